//! Conformance case of the node registry (migration 0020): a beat counts the nodes seen
//! in the last 45 s, this one included; a node not seen for 45 s is not counted; a
//! removed node is not counted at once; a node not seen for a day is deleted.

use std::sync::Arc;

use patchctl_storage::{NodeBeat, Storage};
use uuid::Uuid;

use super::t;

fn node(id: Uuid) -> NodeBeat<'static> {
    NodeBeat {
        id,
        version: "1.2.3",
        address: Some("10.0.0.1:8443"),
    }
}

pub async fn case_node_registry(store: Arc<dyn Storage>) {
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // Alone.
    assert_eq!(store.beat(&node(a), t(0)).await.unwrap(), 1);
    // Beating again does not add a node.
    assert_eq!(store.beat(&node(a), t(1)).await.unwrap(), 1);
    // Three nodes, each counting all three.
    assert_eq!(store.beat(&node(b), t(2)).await.unwrap(), 2);
    let no_address = NodeBeat {
        address: None,
        ..node(c)
    };
    assert_eq!(store.beat(&no_address, t(3)).await.unwrap(), 3);
    assert_eq!(store.beat(&node(a), t(15)).await.unwrap(), 3);
    // c stops beating: still counted at 45 s after its last beat, not after.
    assert_eq!(store.beat(&node(b), t(48)).await.unwrap(), 3);
    assert_eq!(store.beat(&node(b), t(49)).await.unwrap(), 2);
    // a leaves: the others stop counting it at once.
    assert!(store.remove_node(a).await.unwrap());
    assert!(!store.remove_node(a).await.unwrap(), "already gone");
    assert_eq!(store.beat(&node(b), t(50)).await.unwrap(), 1);
    // c comes back (a new beat of the same id): counted again.
    assert_eq!(store.beat(&node(c), t(51)).await.unwrap(), 2);
    // A day later, b's beat deletes c's row (not seen for a day): removing it finds
    // nothing.
    let day = 24 * 3600;
    assert_eq!(store.beat(&node(b), t(51 + day + 1)).await.unwrap(), 1);
    assert!(
        !store.remove_node(c).await.unwrap(),
        "forgotten after a day"
    );
    assert!(store.remove_node(b).await.unwrap());
}
