-- The audit log's term index is written in segments (internal/store/
-- sqlstore, AuditStore): one audit_terms row per term for each stretch of
-- several thousand events, not for each batch of 200 ms. A marker row, term
-- 'segment:', records the last event a segment covers; the events after
-- the last marker are found by reading their blocks. The rows written so
-- far, one per batch and term, cover every event stored: the marker says
-- so.
INSERT INTO audit_terms (term, last_seq, first_seq, seqs)
SELECT 'segment:', MAX(last_seq), MIN(first_seq), '' FROM audit_blocks HAVING COUNT(*) > 0;
