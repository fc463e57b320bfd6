-- change_history.rolled_back_by references change_history(id): deleting history rows (pruning
-- old history, emptying an account) makes PostgreSQL look for rows pointing at each deleted
-- one. Without an index that is a scan of the whole table per deleted row. Only rolled-back
-- changes carry the column, so the index stays small.
create index change_history_rolled_back_by_idx on keapsync.change_history (rolled_back_by)
  where rolled_back_by is not null;
