//! Opening: new files, files that are not ours, permissions.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use rusqlite::Connection;
use store::{Batch, SCHEMA_VERSION, Store, StoreError};

use crate::common::{TOPIC, deposit, push, temp_store};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn new_database_files_are_owner_only() {
    let (_dir, path) = temp_store();
    let mut store = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let mut batch = Batch::new(TOPIC);
    push(&mut batch, 0, 0, deposit(1, 1, 1));
    store.commit(&batch).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    assert_eq!(mode(wal.as_ref()), 0o600);
    let journal: String = store
        .connection_for_tests()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let sync: i64 = store
        .connection_for_tests()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
    assert_eq!(store.summary().unwrap().schema_version, SCHEMA_VERSION);
    // No secondary index on events during loads: the only index of our own
    // keeps a dead letter unique per message.
    let indexes: Vec<String> = store
        .connection_for_tests()
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["dead_letters_by_offset"]);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let (dir, _) = temp_store();
    for (name, bytes) in [
        ("short.db", b"hello\n".to_vec()),
        (
            "long.db",
            (0..20_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>(),
        ),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, &bytes).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NotADatabase { .. }),
            "{name}: {err:?}"
        );
        assert!(err.is_fatal());
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), bytes, "{name} was modified");
    }
    // Nothing else appeared beside them (no -wal, -shm, -journal).
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE events (event_id INTEGER PRIMARY KEY); PRAGMA user_version = 99;",
        )
        .unwrap();
    }
    let bytes = fs::read(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (99, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.is_fatal());
    assert!(err.to_string().contains("schema version 99"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_foreign_database_is_refused_untouched() {
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);")
            .unwrap();
    }
    let bytes = fs::read(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::NotABankingStore { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("customers"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), bytes);

    // Our version number without our tables is not ours either.
    let (_dir2, path2) = temp_store();
    Connection::open(&path2)
        .unwrap()
        .execute_batch("PRAGMA user_version = 1;")
        .unwrap();
    let err = Store::open(&path2).unwrap_err();
    assert!(
        matches!(err, StoreError::NotABankingStore { .. }),
        "{err:?}"
    );
}

#[test]
fn an_empty_existing_database_gets_the_schema() {
    let (_dir, path) = temp_store();
    fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.summary().unwrap().events, 0);
    drop(store);
    Store::open(&path).unwrap();
}

#[test]
fn a_missing_directory_is_named_and_nothing_is_created() {
    let (dir, _) = temp_store();
    let path = dir.path().join("no-such-dir").join("store.db");
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(err, StoreError::MissingDirectory { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(!dir.path().join("no-such-dir").exists());
}

#[test]
fn a_directory_is_not_a_database() {
    let (dir, _) = temp_store();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::CannotOpen { .. }), "{err:?}");
}

#[test]
fn an_unwritable_file_is_refused() {
    let (_dir, path) = temp_store();
    drop(Store::open(&path).unwrap());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    if fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!("skipped: running as a user that ignores file permissions (root)");
        return;
    }
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(err.is_fatal());
}
