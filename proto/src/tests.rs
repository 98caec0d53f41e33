use super::*;

fn good() -> BankingEvent {
    BankingEvent {
        event_id: 7,
        event_type: EventType::Transfer as i32,
        account_id: 1234,
        amount_minor: 12_345,
        currency: "EUR".into(),
        channel: Channel::Mobile as i32,
        status: Status::Completed as i32,
        country: "DE".into(),
        transaction_ref: "TX-0000000007".into(),
        counterparty_account_id: 4321,
        created_at_us: 1_790_000_000_000_000,
    }
}

#[test]
fn round_trip_keeps_every_field() {
    let e = good();
    let bytes = e.encode_to_vec();
    assert_eq!(decode_event(&bytes).unwrap(), e);
}

#[test]
fn each_bad_event_is_refused_with_its_reason() {
    type Case = (fn(&mut BankingEvent), &'static str);
    let cases: &[Case] = &[
        (|e| e.event_id = 0, "event_id is 0"),
        (|e| e.event_type = 0, "unknown event_type 0"),
        (|e| e.event_type = 99, "unknown event_type 99"),
        (|e| e.channel = 42, "unknown channel 42"),
        (|e| e.status = 0, "unknown status 0"),
        (|e| e.amount_minor = 0, "amount_minor 0 is not positive"),
        (|e| e.amount_minor = -5, "amount_minor -5 is not positive"),
        (|e| e.amount_minor = i64::MAX, "exceeds the limit"),
        (|e| e.currency = "eur".into(), "is not an ISO 4217 code"),
        (|e| e.currency = "EURO".into(), "is not an ISO 4217 code"),
        (|e| e.account_id = 0, "account_id 0 is out of range"),
        (|e| e.account_id = 100_000_000, "is out of range"),
        (|e| e.country = "Germany".into(), "ISO 3166-1"),
        (|e| e.transaction_ref.clear(), "transaction_ref is empty"),
        (
            |e| e.counterparty_account_id = 0,
            "transfer without counterparty",
        ),
        (
            |e| e.counterparty_account_id = 1234,
            "invalid for this transfer",
        ),
        (
            |e| e.event_type = EventType::Deposit as i32,
            "counterparty_account_id set on a non-transfer",
        ),
        (|e| e.created_at_us = 5, "not a plausible time"),
    ];
    for (spoil, reason) in cases {
        let mut e = good();
        spoil(&mut e);
        let err = validate(&e).expect_err(reason).to_string();
        assert!(err.contains(reason), "{err:?} should contain {reason:?}");
        // The same refusal through the decoder that consumers call.
        assert!(decode_event(&e.encode_to_vec()).is_err());
    }
}

#[test]
fn garbage_and_truncated_bytes_are_decode_errors() {
    let bytes = good().encode_to_vec();
    assert!(matches!(
        decode_event(&bytes[..bytes.len() / 2]),
        Err(InvalidEvent::Decode(_))
    ));
    assert!(matches!(
        decode_event(&[0xff, 0xff, 0xff, 0xff]),
        Err(InvalidEvent::Decode(_))
    ));
    // Empty bytes decode to an all-default message, which validation refuses.
    assert_eq!(decode_event(&[]), Err(InvalidEvent::MissingEventId));
}

#[test]
fn balance_rule() {
    let t = good();
    let changes: Vec<_> = t.balance_changes().collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        (changes[0].account_id, changes[0].delta_minor),
        (1234, -12_345)
    );
    assert_eq!(
        (changes[1].account_id, changes[1].delta_minor),
        (4321, 12_345)
    );

    let mut d = good();
    d.event_type = EventType::Deposit as i32;
    d.counterparty_account_id = 0;
    assert_eq!(
        d.balance_changes()
            .map(|c| c.delta_minor)
            .collect::<Vec<_>>(),
        [12_345]
    );
    d.event_type = EventType::Fee as i32;
    assert_eq!(
        d.balance_changes()
            .map(|c| c.delta_minor)
            .collect::<Vec<_>>(),
        [-12_345]
    );
    d.status = Status::Declined as i32;
    assert_eq!(d.balance_changes().count(), 0);
    d.status = Status::Pending as i32;
    assert_eq!(d.balance_changes().count(), 0);
}

#[test]
fn checksum_is_order_independent_and_sees_duplicates() {
    let a: IdChecksum = [1u64, 2, 3].into_iter().collect();
    let b: IdChecksum = [3u64, 1, 2].into_iter().collect();
    let c: IdChecksum = [1u64, 2, 3, 3].into_iter().collect();
    let d: IdChecksum = [1u64, 2].into_iter().collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
    assert_eq!(a.hex().len(), 16);
}
