//! Ids wider than a word, under a fixed and a random trie seed (the
//! seed's own tests are in `config.rs` and `hash.rs`).

use switchboard_core::{Config, Engine};

#[test]
fn wide_ids_work_under_any_seed() {
    for engine in [
        Engine::with_config(Config::default().hash_seed(1)),
        Engine::new(),
    ] {
        wide_ids(&engine);
    }
}

fn wide_ids(engine: &Engine<(u64, u64), u64>) {
    for c in 0..4 {
        engine.connect(c, switchboard_core::Caps::NONE);
    }
    for a in 0..500u64 {
        engine.subscribe((a, a.rotate_left(23)), a % 4).unwrap();
    }
    assert_eq!(engine.snapshot().thread_count(), 500);
    engine.snapshot().validate().unwrap();
    for a in 0..500u64 {
        assert_eq!(engine.subscribers((a, a.rotate_left(23))).to_vec(), [a % 4]);
    }
}
