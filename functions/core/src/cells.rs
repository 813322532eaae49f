//! Cell rules (shared/spec/user_purchase.md, "Cell rules"). Being written.
