//! How fast the producer generates and encodes events, without Kafka: the
//! same code as its send loop ([`EncodedBatch`], batches of 256), then the
//! two halves apart.
//!
//! `cargo run --release -p producer --example generate_rate -- 10000000`

use std::time::Instant;

use producer::Generator;
use producer::batch::{EncodedBatch, VecWriter};
use prost::Message;
use proto::BankingEvent;

const CREATED_AT_US: i64 = 1_790_000_000_000_000;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let per_event = |started: Instant| started.elapsed().as_secs_f64() * 1e9 / n as f64;

    // What the send loop does: batches generated and encoded in one go.
    let mut generator = Generator::new(42, 10_000, 1).expect("valid settings");
    let mut batch = EncodedBatch::new();
    let mut bytes = 0usize;
    let started = Instant::now();
    let mut left = n;
    while left > 0 {
        let b = left.min(256);
        batch.refill(&mut generator, b as usize, || CREATED_AT_US);
        while let Some(e) = batch.take() {
            bytes += e.payload.len();
        }
        left -= b;
    }
    let batched = per_event(started);

    // Filling alone, then encoding alone (into a Vec, as encode_to_vec).
    let mut generator = Generator::new(42, 10_000, 1).expect("valid settings");
    let mut event = BankingEvent::default();
    let started = Instant::now();
    for _ in 0..n {
        generator.fill(&mut event, CREATED_AT_US);
    }
    let fill = per_event(started);
    let mut payload = Vec::with_capacity(256);
    let started = Instant::now();
    for _ in 0..n {
        payload.clear();
        event.encode(&mut payload).expect("a Vec grows");
    }
    let encode_vec = per_event(started);
    let started = Instant::now();
    for _ in 0..n {
        payload.clear();
        event.encode_raw(&mut VecWriter(&mut payload));
    }
    let encode_writer = per_event(started);
    println!(
        "batched fill+encode+key: {batched:.0} ns/event ({} bytes/event); \
         fill alone: {fill:.0} ns/event; encode into a Vec alone: {encode_vec:.0} ns/event; \
         encode through VecWriter alone: {encode_writer:.0} ns/event",
        bytes as u64 / n
    );
}
