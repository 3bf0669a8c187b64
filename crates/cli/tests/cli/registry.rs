//! The registry commands: generation is deterministic, and an import with a bad line names it
//! and imports nothing.

use crate::support::{cyberid, ok_json, refused_with};

#[test]
fn registry_generation_is_deterministic_and_import_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.tsv");
    let b = dir.path().join("b.tsv");
    for out in [&a, &b] {
        ok_json(&[
            "registry",
            "generate",
            "--count",
            "50",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let mut text = std::fs::read_to_string(&a).unwrap();
    text.push_str("11010519491231002X\tnobody\n");
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, text).unwrap();
    let data = dir.path().join("data");
    let output = cyberid(&[
        "registry",
        "import",
        bad.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    let error = refused_with(&output, "line 52");
    assert_eq!(error["error"], "invalid_registry_file");
    // The 50 good lines before the bad one were not imported either, and the import's
    // scratch file is gone.
    let registry_people = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = cyberid_store::open(&cyberid_store::StoreLocation::Sqlite {
            data_dir: data.clone(),
            durability: cyberid_store::Durability::Full,
        })
        .await
        .unwrap();
        store.counts().await.unwrap().registry_people
    });
    assert_eq!(registry_people, 0);
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains("scratch"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
