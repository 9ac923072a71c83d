//! The apk inventory (being written).
