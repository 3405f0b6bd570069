//! A withdrawal a guardian vault covers, end to end on anvil: held with no transfer until
//! its guardians release it, then moved once by the worker; one its guardians reject never
//! moves.

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::Address;
use ed25519_dalek::SigningKey;
use haven_db::Role;
use haven_guardian::{Guardian, connect};
use haven_vault::DecisionKind;
use haven_vault::protocol::{DecisionResult, ServerMessage};
use reqwest::Method;
use serde_json::json;

use crate::stack::{Stack, hnv};
use crate::token_api::funded_member;

const SETTLE: Duration = Duration::from_secs(60);

/// A vault covering withdrawals from 100 HNV with one guardian, connected, and `destination`
/// registered as the member's payout address: the guardian's token, device and socket, and
/// an operator's token.
async fn guarded(
    stack: &Stack,
    member: &str,
    destination: &str,
) -> (String, SigningKey, haven_guardian::Connection, String) {
    let admin = stack.admin_token().await;
    let operator = stack.user_token("op-w@example.com", Role::Operator).await;
    let min = haven_rewards::Hnv::from_whole(100).base_units().to_string();
    let (status, _, vault) = stack
        .call(
            Method::POST,
            "/api/v1/admin/vaults",
            &admin,
            None,
            Some(json!({"name": "withdrawals", "threshold": 1, "covers": {"withdrawal": min}})),
        )
        .await;
    assert_eq!(status, 201, "{vault}");
    let vault_id = vault["id"].as_str().unwrap().parse().unwrap();
    let (_, _, invitation) = stack
        .call(
            Method::POST,
            &format!("/api/v1/admin/vaults/{vault_id}/invitations"),
            &admin,
            None,
            None,
        )
        .await;
    let device = SigningKey::from_bytes(&[81; 32]);
    let guardian = Guardian::join(
        &stack.api.address,
        vault_id,
        invitation["code"].as_str().unwrap(),
        &device,
        "w",
    )
    .await
    .unwrap();
    let token = guardian.tokens.access_token.clone();
    let socket = connect(&stack.api.address, &token).await.unwrap();
    let (status, _, added) = stack
        .call(
            Method::POST,
            &format!("/api/v1/members/{member}/payout-addresses"),
            &operator,
            None,
            Some(json!({"chain": "eth", "address": destination})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    (token, device, socket, operator)
}

/// The withdrawal settlement audit rows, oldest first: action and the vault request named.
async fn settlements(stack: &Stack) -> Vec<(String, String)> {
    haven_db::PgAuditLog::new(stack.pool.clone())
        .page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            matches!(
                r.event.action.as_str(),
                "withdrawal.approved" | "withdrawal.rejected"
            )
        })
        .map(|r| {
            let request = r.event.details["vault_request_id"].as_str().unwrap_or("");
            (r.event.action.clone(), request.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_covered_withdrawal_moves_only_once_its_guardians_release_it() {
    let stack = Stack::start().await;
    let (member, wallet) = funded_member(&stack).await;
    let destination = "0x2222222222222222222222222222222222222222";
    let (token, device, mut socket, operator) = guarded(&stack, &member, destination).await;
    let path = format!("/api/v1/members/{member}/withdrawals");
    let withdraw = |amount: &str, key: &str| {
        let body = json!({"chain": "eth", "address": destination, "amount_hnv": amount});
        let (path, operator, key) = (path.clone(), operator.clone(), key.to_owned());
        let stack = &stack;
        async move {
            stack
                .call(Method::POST, &path, &operator, Some(&key), Some(body))
                .await
        }
    };

    // below the vault's minimum: moves at once
    let (status, _, small) = withdraw("10", "withdraw-small").await;
    assert_eq!(
        (status, small["status"].as_str()),
        (202, Some("pending")),
        "{small}"
    );

    let (status, _, big) = withdraw("150", "withdraw-big").await;
    assert_eq!(status, 202, "{big}");
    assert_eq!(big["status"], "held", "{big}");
    let request_id = big["vault_request_id"].as_str().unwrap().to_owned();
    let id = big["id"].as_str().unwrap().to_owned();
    // a retry of the key is the same withdrawal and the same request (the idempotency layer
    // replays the first answer)
    let (status, _, again) = withdraw("150", "withdraw-big").await;
    assert!(matches!(status, 200 | 202), "{again}");
    assert_eq!(
        (&again["id"], &again["vault_request_id"]),
        (&big["id"], &big["vault_request_id"])
    );

    let to = Address::from_str(destination).unwrap();
    stack
        .eventually("the small withdrawal is sent", SETTLE, || async {
            stack.balance(to).await == hnv(10)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack.balance(to).await,
        hnv(10),
        "the held withdrawal did not move"
    );

    let requests = socket.list_requests(&token).await.unwrap();
    let request = requests
        .iter()
        .find(|r| r.id.to_string() == request_id)
        .expect("the guardian sees the withdrawal");
    assert!(request.canonical.contains(destination));
    let decided = socket
        .decide(&token, &device, DecisionKind::Approve, request)
        .await
        .unwrap();
    assert!(
        matches!(
            decided,
            ServerMessage::Decision {
                result: DecisionResult::Released,
                ..
            }
        ),
        "{decided:?}"
    );
    stack
        .eventually("the released withdrawal is confirmed", SETTLE, || async {
            let (_, _, w) = stack
                .call(Method::GET, &format!("{path}/{id}"), &operator, None, None)
                .await;
            w["status"] == "confirmed"
        })
        .await;
    assert_eq!(stack.balance(to).await, hnv(160));
    assert_eq!(stack.balance(wallet).await, hnv(320));

    // rejected by its guardian: never moves
    let (status, _, refused) = withdraw("120", "withdraw-refused").await;
    assert_eq!(
        (status, refused["status"].as_str()),
        (202, Some("held")),
        "{refused}"
    );
    let refused_id = refused["id"].as_str().unwrap().to_owned();
    let requests = socket.list_requests(&token).await.unwrap();
    let request = requests
        .iter()
        .find(|r| Some(r.id.to_string().as_str()) == refused["vault_request_id"].as_str())
        .unwrap();
    let decided = socket
        .decide(&token, &device, DecisionKind::Reject, request)
        .await
        .unwrap();
    assert!(
        matches!(
            decided,
            ServerMessage::Decision {
                result: DecisionResult::Rejected,
                ..
            }
        ),
        "{decided:?}"
    );
    let (_, _, w) = stack
        .call(
            Method::GET,
            &format!("{path}/{refused_id}"),
            &operator,
            None,
            None,
        )
        .await;
    assert_eq!(w["status"], "rejected", "{w}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stack.balance(to).await,
        hnv(160),
        "transferred once, the rejected never"
    );
    let settled = settlements(&stack).await;
    let refused_request = refused["vault_request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        settled,
        [
            ("withdrawal.approved".to_owned(), request_id),
            ("withdrawal.rejected".to_owned(), refused_request),
        ],
        "one audit row per settlement, naming the request"
    );
}
