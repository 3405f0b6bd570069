use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use haven_testkit::TestDb;

async fn table_count(url: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .get_result::<Count>(&mut conn)
    .await
    .unwrap()
    .n
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_round_trip_up_down_up() {
    let db = TestDb::new().await;
    let all = haven_db::applied_migrations(db.url()).await.unwrap();
    assert!(!all.is_empty());
    let tables = table_count(db.url()).await;
    assert!(tables >= 4);

    assert!(
        haven_db::run_migrations(db.url()).await.unwrap().is_empty(),
        "already up to date"
    );

    let reverted = haven_db::revert_all_migrations(db.url()).await.unwrap();
    assert_eq!(reverted.len(), all.len());
    assert_eq!(
        table_count(db.url()).await,
        0,
        "down.sql left tables behind"
    );
    assert!(
        haven_db::applied_migrations(db.url())
            .await
            .unwrap()
            .is_empty()
    );

    let applied = haven_db::run_migrations(db.url()).await.unwrap();
    assert_eq!(applied.len(), all.len());
    assert_eq!(table_count(db.url()).await, tables);
}
