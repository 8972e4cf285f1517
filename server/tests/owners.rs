//! One owner per conversation, at the store: two replicas' stores on one real
//! `nats-server`. A conversation is claimed by one of them only; its owner can give
//! it up for the other to take at once; an owner that dies lets its keys expire and
//! the conversation is then taken by whoever claims it next.

mod common;

use std::time::{Duration, Instant};

use common::NatsServer;
use server::store::{Claim, NatsOptions, NatsStore, Store};

const TTL: Duration = Duration::from_secs(2);

async fn replica(nats: &NatsServer) -> NatsStore {
    NatsStore::connect(&NatsOptions {
        url: nats.url(),
        creds: None,
        prefix: "owners".into(),
        replicas: 1,
        lease_ttl: TTL,
    })
    .await
    .expect("connect to NATS")
}

fn theirs(claim: Claim) -> String {
    match claim {
        Claim::Theirs(holder) => holder,
        Claim::Mine => panic!("the conversation was claimed twice"),
    }
}

#[tokio::test]
async fn a_conversation_has_one_owner_and_changes_hands_when_released() {
    let nats = NatsServer::start();
    let (a, b) = (replica(&nats).await, replica(&nats).await);

    assert_eq!(a.claim("c1").await.expect("claim"), Claim::Mine);
    // Claiming again is a no-op for the owner and names it for anyone else.
    assert_eq!(a.claim("c1").await.expect("claim"), Claim::Mine);
    let holder = theirs(b.claim("c1").await.expect("claim"));
    assert_eq!(a.owner("c1").await.expect("owner"), Some(holder.clone()));
    assert!(holder.contains(&format!("pid {}", std::process::id())));

    // Another conversation is independent of the first.
    assert_eq!(b.claim("c2").await.expect("claim"), Claim::Mine);
    theirs(a.claim("c2").await.expect("claim"));

    // Renewals keep the key well past its TTL.
    tokio::time::sleep(TTL * 2).await;
    theirs(b.claim("c1").await.expect("claim"));

    a.release("c1").await;
    assert_eq!(b.claim("c1").await.expect("claim"), Claim::Mine);
    theirs(a.claim("c1").await.expect("claim"));
    assert!(a.ownership_lost().is_some_and(|l| !l.is_cancelled()));
    assert!(b.ownership_lost().is_some_and(|l| !l.is_cancelled()));
}

#[tokio::test]
async fn a_dead_owners_conversation_is_taken_once_its_key_expires() {
    let nats = NatsServer::start();
    let a = replica(&nats).await;
    let b = replica(&nats).await;
    assert_eq!(a.claim("c").await.expect("claim"), Claim::Mine);
    theirs(b.claim("c").await.expect("claim"));
    // Dropping the store stops its renewals, as the death of its process would.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match b.claim("c").await.expect("claim") {
            Claim::Mine => break,
            Claim::Theirs(_) => {
                assert!(
                    Instant::now() < deadline,
                    "the dead owner's key never expired"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let c = replica(&nats).await;
    theirs(c.claim("c").await.expect("claim"));
}

#[tokio::test]
async fn several_replicas_claiming_at_once_get_one_owner() {
    let nats = NatsServer::start();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(replica(&nats).await);
    }
    let claims = futures::future::join_all(stores.iter().map(|s| s.claim("c"))).await;
    let mine = claims
        .into_iter()
        .map(|c| c.expect("claim"))
        .filter(|c| *c == Claim::Mine)
        .count();
    assert_eq!(mine, 1);
}
