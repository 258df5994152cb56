//! The tag dictionary (SmartEncoding): tag ids to strings, kept apart from
//! the rows. The store holds it; this is the server's cache of it, loaded
//! at start and fed by every batch, so that turning ids back into names in
//! results costs a hash lookup, not a join. Names become ids without it:
//! an id is a hash of its kind and string ([`tag_id`]).

use causeway_model::tags::{tag_id, TagKind};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Default)]
pub struct Dictionary {
    names: RwLock<HashMap<(TagKind, u64), Arc<str>>>,
}

impl Dictionary {
    pub fn new() -> Dictionary {
        Dictionary::default()
    }

    /// Adds entries (from the store, or from a batch just stored).
    pub fn add<'a>(&self, entries: impl IntoIterator<Item = (TagKind, u64, &'a str)>) {
        let Ok(mut names) = self.names.write() else {
            return;
        };
        for (kind, id, value) in entries {
            names.entry((kind, id)).or_insert_with(|| Arc::from(value));
        }
    }

    /// Whether `(kind, id)` is known.
    pub fn contains(&self, kind: TagKind, id: u64) -> bool {
        self.names
            .read()
            .map(|n| n.contains_key(&(kind, id)))
            .unwrap_or(false)
    }

    /// The string of a tag id; "" for 0 (unknown) and for ids not (yet)
    /// in the dictionary.
    pub fn name(&self, kind: TagKind, id: u64) -> Arc<str> {
        if id == 0 {
            return Arc::from("");
        }
        self.names
            .read()
            .ok()
            .and_then(|n| n.get(&(kind, id)).cloned())
            .unwrap_or_else(|| Arc::from(""))
    }

    /// The id a name has as a tag of `kind` (whether or not any row has it).
    pub fn id(&self, kind: TagKind, name: &str) -> u64 {
        tag_id(kind, name)
    }

    /// Entries in the cache.
    pub fn len(&self) -> usize {
        self.names.read().map(|n| n.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        let d = Dictionary::new();
        let id = tag_id(TagKind::Service, "db");
        assert_eq!(&*d.name(TagKind::Service, id), "");
        d.add([(TagKind::Service, id, "db")]);
        assert_eq!(&*d.name(TagKind::Service, id), "db");
        assert_eq!(&*d.name(TagKind::Process, id), "");
        assert_eq!(d.id(TagKind::Service, "db"), id);
        assert!(d.contains(TagKind::Service, id));
        assert_eq!(d.len(), 1);
    }
}
