-- Issue 21: a fulfilment's address subjects (kind address: an address change,
-- store/fulfilment.py put_address and put_edge_address) are owned by the
-- released order's subject, so a privacy request that finds the customer (the
-- fingerprint of the order subject's email) reaches them too
-- (personal_data.live_subjects follows owners). Address subjects written
-- before had only the ("order", order_id) reference: this gives them the
-- owner. Idempotent.
UPDATE personal_subjects s
SET owner_id = o.subject_id
FROM personal_subject_refs r
JOIN fulfilment_orders o ON o.order_id = r.ref_id
WHERE s.kind = 'address'
  AND s.owner_id IS NULL
  AND r.subject_id = s.subject_id
  AND r.ref_kind = 'order'
  AND o.subject_id <> s.subject_id;
