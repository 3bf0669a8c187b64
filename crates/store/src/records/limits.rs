/// An increase of one rate-limit counter (negative: a refund). `counter` names the limit and,
/// by a keyed digest, what it counts (an address, a client, an ID number), never the value in
/// clear; each window of a limit has its own counter, kept until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterIncrease {
    pub counter: Vec<u8>,
    pub window_start: i64,
    pub expires_at: i64,
    pub by: i64,
}
