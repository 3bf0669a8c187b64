//! Rate-limit counters: added to by several callers at once, totals read back, refunds,
//! windows apart, purged after they expire.

use cyberid_store::CounterIncrease;

use crate::for_each_backend;

fn increase(counter: &[u8], window_start: i64, by: i64) -> CounterIncrease {
    CounterIncrease {
        counter: counter.to_vec(),
        window_start,
        expires_at: window_start + 60,
        by,
    }
}

#[tokio::test]
async fn counters_add_up_across_callers_and_windows() {
    for_each_backend(|store| async move {
        assert_eq!(store.add_to_counters(&[]).await.unwrap(), Vec::<i64>::new());
        let first = store
            .add_to_counters(&[increase(b"a", 0, 3), increase(b"b", 0, 1)])
            .await
            .unwrap();
        assert_eq!(first, vec![3, 1]);
        // Totals come back in the order asked, whatever order the store keeps.
        let second = store
            .add_to_counters(&[
                increase(b"b", 0, 2),
                increase(b"a", 0, 4),
                increase(b"a", 60, 1),
            ])
            .await
            .unwrap();
        assert_eq!(second, vec![3, 7, 1], "a new window starts at zero");
        // Read back without adding: known and unknown counters alike.
        assert_eq!(
            store
                .add_to_counters(&[increase(b"a", 0, 0), increase(b"never", 0, 0)])
                .await
                .unwrap(),
            vec![7, 0]
        );
        // A refund.
        assert_eq!(
            store
                .add_to_counters(&[increase(b"a", 0, -1)])
                .await
                .unwrap(),
            vec![6]
        );
        // Many callers at once: nothing is lost.
        let adds = (0..20).map(|_| {
            let store = store.clone();
            async move {
                store
                    .add_to_counters(&[increase(b"c", 0, 1)])
                    .await
                    .unwrap()
            }
        });
        let mut seen: Vec<i64> = futures::future::join_all(adds)
            .await
            .into_iter()
            .flatten()
            .collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=20).collect::<Vec<i64>>(),
            "each caller saw its own total"
        );
    })
    .await;
}

#[tokio::test]
async fn expired_counters_are_purged_in_batches() {
    for_each_backend(|store| async move {
        let increases: Vec<_> = (0..5u8).map(|i| increase(&[i], 0, 1)).collect();
        store.add_to_counters(&increases).await.unwrap();
        store
            .add_to_counters(&[increase(b"later", 600, 1)])
            .await
            .unwrap();
        assert_eq!(
            store.purge_counters(60, 10).await.unwrap(),
            0,
            "not expired yet"
        );
        assert_eq!(store.purge_counters(61, 3).await.unwrap(), 3);
        assert_eq!(store.purge_counters(61, 3).await.unwrap(), 2);
        assert_eq!(store.purge_counters(61, 3).await.unwrap(), 0);
        // A purged counter starts again from zero; the later window is untouched.
        assert_eq!(
            store
                .add_to_counters(&[increase(&[0], 0, 1), increase(b"later", 600, 1)])
                .await
                .unwrap(),
            vec![1, 2]
        );
    })
    .await;
}
