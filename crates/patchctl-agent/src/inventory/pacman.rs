//! The pacman inventory (being written).
