//! A deterministic generator of realistic banking events.
//!
//! Same seed, same accounts, same first id: the same events, byte for byte
//! (apart from `created_at_us`, which the caller stamps at send time). That
//! is what lets a test or the benchmark recompute, independently of any
//! database, exactly what a consumer must have stored.
//!
//! What "realistic" means here:
//! - each account has a home currency and country (most in euros across the
//!   euro area, then GBP, USD, CHF, SEK), fixed by its number;
//! - card transactions dominate, then payments, transfers, withdrawals,
//!   deposits, fees; each type has its own channels (no deposit through the
//!   API, withdrawals mostly at ATMs) and its own log-normal amount spread
//!   (coffee-sized card payments, salary-sized deposits, round ATM sums);
//! - a transfer goes to a different existing account of the same currency;
//! - 94% of events complete, 3% stay pending, 3% are declined;
//! - a few card transactions and withdrawals happen abroad.

use proto::{BankingEvent, Channel, EventType, Status};
use rand::{Rng, SeedableRng};
use rand_distr::weighted::WeightedAliasIndex;
use rand_distr::{Distribution, LogNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The first account number; accounts are `FIRST_ACCOUNT ..
/// FIRST_ACCOUNT + accounts` (eight-digit numbers, as validation wants).
pub const FIRST_ACCOUNT: u64 = 10_000_001;

/// The most accounts the generator can number within
/// [`proto::MAX_ACCOUNT_ID`].
pub const MAX_ACCOUNTS: u64 = proto::MAX_ACCOUNT_ID - FIRST_ACCOUNT + 1;

/// Home (currency, country) of an account, by `index % HOMES.len()`: twelve
/// euro-area slots out of twenty, then the others. Picking by index keeps
/// the mapping a pure function of the account number.
const HOMES: [(&str, &str); 20] = [
    ("EUR", "DE"),
    ("EUR", "DE"),
    ("EUR", "DE"),
    ("EUR", "FR"),
    ("EUR", "FR"),
    ("EUR", "NL"),
    ("EUR", "ES"),
    ("EUR", "ES"),
    ("EUR", "IT"),
    ("EUR", "IT"),
    ("EUR", "BE"),
    ("EUR", "AT"),
    ("GBP", "GB"),
    ("GBP", "GB"),
    ("GBP", "GB"),
    ("USD", "US"),
    ("USD", "US"),
    ("USD", "US"),
    ("CHF", "CH"),
    ("SEK", "SE"),
];

/// Countries a card is used in when abroad.
const ABROAD: [&str; 8] = ["US", "GB", "FR", "ES", "IT", "TH", "MX", "JP"];

/// Share of each event type, in the order of [`TYPES`].
const TYPES: [EventType; 6] = [
    EventType::Transaction,
    EventType::Payment,
    EventType::Transfer,
    EventType::Withdrawal,
    EventType::Deposit,
    EventType::Fee,
];
const TYPE_WEIGHTS: [u32; 6] = [40, 18, 14, 12, 11, 5];

/// Channels in the order of the weight rows below.
const CHANNELS: [Channel; 5] = [
    Channel::Atm,
    Channel::Online,
    Channel::Mobile,
    Channel::Branch,
    Channel::Api,
];

/// Per event type (rows in [`TYPES`] order): weights of ATM, ONLINE, MOBILE,
/// BRANCH, API. A card transaction at a terminal is booked through the card
/// network API; deposits never come in through the API.
const CHANNEL_WEIGHTS: [[u32; 5]; 6] = [
    [0, 35, 30, 0, 35],  // TRANSACTION: online shops, mobile wallets, card network
    [0, 40, 35, 10, 15], // PAYMENT: bills, standing orders
    [0, 40, 45, 10, 5],  // TRANSFER
    [85, 0, 0, 15, 0],   // WITHDRAWAL
    [40, 10, 10, 40, 0], // DEPOSIT: cash at ATMs and branches, cheques
    [0, 0, 0, 10, 90],   // FEE: charged by the bank's systems
];

/// Log-normal amount per type, in major units: (median, sigma), and the
/// bounds in minor units the draw is clamped to.
const AMOUNTS: [(f64, f64, i64, i64); 6] = [
    (25.0, 1.0, 50, 500_000),        // TRANSACTION: 0.50 .. 5,000
    (120.0, 1.1, 100, 2_000_000),    // PAYMENT: 1 .. 20,000
    (250.0, 1.3, 100, 10_000_000),   // TRANSFER: 1 .. 100,000
    (100.0, 0.8, 1_000, 200_000),    // WITHDRAWAL: 10 .. 2,000, round
    (1_500.0, 1.0, 500, 50_000_000), // DEPOSIT: 5 .. 500,000
    (4.0, 0.9, 10, 10_000),          // FEE: 0.10 .. 100
];

/// Why a generator cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeneratorError {
    /// A transfer needs two accounts.
    #[error("--accounts must be at least 2 (a transfer needs two accounts), got {0}")]
    TooFewAccounts(u64),
    /// More accounts than eight-digit numbers.
    #[error("--accounts must be at most {MAX_ACCOUNTS}, got {0}")]
    TooManyAccounts(u64),
    /// Ids start at 1 (0 means absent) and stay within SQLite's i64.
    #[error("the first event id must be in 1..={max}, got {0}", max = i64::MAX)]
    BadFirstId(u64),
}

/// Produces an endless, reproducible stream of valid events.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Xoshiro256PlusPlus,
    accounts: u64,
    next_id: u64,
    types: WeightedAliasIndex<u32>,
    channels: Vec<WeightedAliasIndex<u32>>,
    amounts: Vec<LogNormal<f64>>,
}

impl Generator {
    /// A generator over `accounts` accounts whose first event has id
    /// `first_id`; ids then increase by one.
    pub fn new(seed: u64, accounts: u64, first_id: u64) -> Result<Generator, GeneratorError> {
        if accounts < 2 {
            return Err(GeneratorError::TooFewAccounts(accounts));
        }
        if accounts > MAX_ACCOUNTS {
            return Err(GeneratorError::TooManyAccounts(accounts));
        }
        if first_id == 0 || first_id > i64::MAX as u64 {
            return Err(GeneratorError::BadFirstId(first_id));
        }
        // Alias tables: a draw costs the same whatever the weights (binary
        // searches over cumulative weights were a tenth of generation).
        let weighted =
            |w: &[u32]| WeightedAliasIndex::new(w.to_vec()).expect("static weights are valid");
        Ok(Generator {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            accounts,
            next_id: first_id,
            types: weighted(&TYPE_WEIGHTS),
            channels: CHANNEL_WEIGHTS.iter().map(|w| weighted(w)).collect(),
            amounts: AMOUNTS
                .iter()
                .map(|&(median, sigma, _, _)| {
                    LogNormal::new(median.ln(), sigma).expect("static parameters are valid")
                })
                .collect(),
        })
    }

    /// The id the next event will carry.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// The next event, created at `created_at_us` (µs since the epoch).
    pub fn next_event(&mut self, created_at_us: i64) -> BankingEvent {
        let mut event = BankingEvent::default();
        self.fill(&mut event, created_at_us);
        event
    }

    /// Overwrites `event` with the next event, reusing its strings'
    /// allocations: the producer's hot path allocates nothing here.
    pub fn fill(&mut self, event: &mut BankingEvent, created_at_us: i64) {
        let event_id = self.next_id;
        self.next_id += 1;

        let t = self.types.sample(&mut self.rng);
        let event_type = TYPES[t];
        let index = self.rng.random_range(0..self.accounts);
        let (currency, home) = home_of(index);
        let channel = CHANNELS[self.channels[t].sample(&mut self.rng)];

        let (_, _, low, high) = AMOUNTS[t];
        let major = self.amounts[t].sample(&mut self.rng);
        let mut amount_minor = ((major * 100.0).round() as i64).clamp(low, high);
        if event_type == EventType::Withdrawal {
            // ATMs pay out in multiples of ten.
            amount_minor = (amount_minor / 1_000).max(1) * 1_000;
        }

        let roll = self.rng.random_range(0..100u32);
        let status = match roll {
            0..=93 => Status::Completed,
            94..=96 => Status::Pending,
            _ => Status::Declined,
        };

        let abroad = matches!(event_type, EventType::Transaction | EventType::Withdrawal)
            && self.rng.random_range(0..100u32) < 4;
        let country = if abroad {
            ABROAD[self.rng.random_range(0..ABROAD.len())]
        } else {
            home
        };

        let counterparty_account_id = if event_type == EventType::Transfer {
            FIRST_ACCOUNT + self.counterparty(index)
        } else {
            0
        };

        event.event_id = event_id;
        event.event_type = event_type as i32;
        event.account_id = FIRST_ACCOUNT + index;
        event.amount_minor = amount_minor;
        set(&mut event.currency, currency);
        event.channel = channel as i32;
        event.status = status as i32;
        set(&mut event.country, country);
        // The bank's reference: unique per event, "TXN" and 17 digits.
        // (itoa rather than `write!`: formatting is a third of the cost of
        // generating an event.)
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(event_id);
        let r = &mut event.transaction_ref;
        r.clear();
        r.push_str("TXN");
        r.extend(std::iter::repeat_n(
            '0',
            17usize.saturating_sub(digits.len()),
        ));
        r.push_str(digits);
        event.counterparty_account_id = counterparty_account_id;
        event.created_at_us = created_at_us;
    }

    /// Another account of the same home currency slot when there is one
    /// (money stays in its currency), else any other account.
    fn counterparty(&mut self, index: u64) -> u64 {
        let slots = HOMES.len() as u64;
        let slot = index % slots;
        // Accounts with index ≡ slot (mod 20): slot, slot + 20, ...
        let same_slot = (self.accounts - slot).div_ceil(slots);
        if same_slot >= 2 {
            let mut k = self.rng.random_range(0..same_slot - 1);
            if slot + k * slots >= index {
                k += 1; // skip the account itself
            }
            slot + k * slots
        } else {
            let mut other = self.rng.random_range(0..self.accounts - 1);
            if other >= index {
                other += 1;
            }
            other
        }
    }
}

impl Iterator for Generator {
    type Item = BankingEvent;

    /// Events stamped with the current time.
    fn next(&mut self) -> Option<BankingEvent> {
        Some(self.next_event(common::now_us()))
    }
}

/// Home currency and country of the account with this index.
fn home_of(index: u64) -> (&'static str, &'static str) {
    HOMES[(index % HOMES.len() as u64) as usize]
}

fn set(s: &mut String, value: &str) {
    s.clear();
    s.push_str(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const T: i64 = 1_790_000_000_000_000;

    fn take(seed: u64, accounts: u64, n: usize) -> Vec<BankingEvent> {
        let mut g = Generator::new(seed, accounts, 1).unwrap();
        (0..n).map(|_| g.next_event(T)).collect()
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        assert_eq!(take(42, 10_000, 2_000), take(42, 10_000, 2_000));
        assert_ne!(take(42, 10_000, 2_000), take(43, 10_000, 2_000));
    }

    #[test]
    fn events_are_valid_and_realistic() {
        let accounts = 10_000;
        let events = take(7, accounts, 100_000);
        let valid_accounts = FIRST_ACCOUNT..FIRST_ACCOUNT + accounts;
        let mut types = HashSet::new();
        let mut channels = HashSet::new();
        let mut statuses = HashSet::new();
        let mut currencies = HashSet::new();
        let mut ids = HashSet::new();
        for (i, e) in events.iter().enumerate() {
            proto::validate(e).unwrap_or_else(|err| panic!("{e:?}: {err}"));
            assert_eq!(e.event_id, i as u64 + 1);
            assert!(ids.insert(e.event_id));
            assert!(valid_accounts.contains(&e.account_id));
            let t = EventType::try_from(e.event_type).unwrap();
            let (_, _, low, high) = AMOUNTS[TYPES.iter().position(|x| *x == t).unwrap()];
            assert!((low..=high).contains(&e.amount_minor), "{e:?}");
            if t == EventType::Transfer {
                assert_ne!(e.counterparty_account_id, e.account_id);
                assert!(valid_accounts.contains(&e.counterparty_account_id));
                let idx = |a: u64| (a - FIRST_ACCOUNT) as usize % HOMES.len();
                assert_eq!(
                    HOMES[idx(e.account_id)].0,
                    HOMES[idx(e.counterparty_account_id)].0
                );
            } else {
                assert_eq!(e.counterparty_account_id, 0);
            }
            if t == EventType::Withdrawal {
                assert_eq!(e.amount_minor % 1_000, 0);
            }
            // A channel of weight 0 for this type never appears (no
            // deposit through the API, no withdrawal online).
            let row = TYPES.iter().position(|x| *x == t).unwrap();
            let c = Channel::try_from(e.channel).unwrap();
            let col = CHANNELS.iter().position(|x| *x == c).unwrap();
            assert!(CHANNEL_WEIGHTS[row][col] > 0, "{t:?} through {c:?}");
            types.insert(e.event_type);
            channels.insert(e.channel);
            statuses.insert(e.status);
            currencies.insert(e.currency.clone());
        }
        assert_eq!(types.len(), 6, "every event type appears");
        assert_eq!(channels.len(), 5, "every channel appears");
        assert_eq!(statuses.len(), 3, "every status appears");
        assert!(currencies.len() >= 5);

        // Proportions: card transactions are the most common type, and
        // most events complete.
        let count = |t: EventType| events.iter().filter(|e| e.event_type == t as i32).count();
        assert!(count(EventType::Transaction) > count(EventType::Payment));
        assert!(count(EventType::Fee) < count(EventType::Deposit));
        let completed = events
            .iter()
            .filter(|e| e.status == Status::Completed as i32)
            .count();
        assert!(completed > 90_000 && completed < 97_000, "{completed}");
        // Many distinct accounts are touched.
        let touched: HashSet<u64> = events.iter().map(|e| e.account_id).collect();
        assert!(touched.len() > 9_900, "{}", touched.len());
    }

    #[test]
    fn transfers_work_with_few_accounts() {
        for accounts in [2, 3, 21, 41] {
            for e in take(1, accounts, 5_000) {
                proto::validate(&e).unwrap();
                assert!(e.account_id < FIRST_ACCOUNT + accounts);
                if e.counterparty_account_id != 0 {
                    assert!(e.counterparty_account_id < FIRST_ACCOUNT + accounts);
                }
            }
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert_eq!(
            Generator::new(1, 1, 1).unwrap_err(),
            GeneratorError::TooFewAccounts(1)
        );
        assert!(Generator::new(1, MAX_ACCOUNTS + 1, 1).is_err());
        assert!(Generator::new(1, 10, 0).is_err());
        assert!(Generator::new(1, 10, u64::MAX).is_err());
    }
}
