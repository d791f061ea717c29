-- Issue 21: an employee of a campaign roster is a personal-data subject
-- (kind employee) referenced by ("campaign_roster", campaign_id). A privacy
-- request finds a campaign's legal hold (an employee sale not reconciled
-- yet) through a ("campaign", campaign_id) reference, which the roster's
-- subjects lacked: an erasure of a roster employee did not wait for the
-- reconciliation. Roster imports now write both references
-- (store/campaign.py _put_personal); this gives the subjects imported before
-- the missing one. Idempotent.
INSERT INTO personal_subject_refs (subject_id, ref_kind, ref_id)
SELECT subject_id, 'campaign', ref_id
FROM personal_subject_refs
WHERE ref_kind = 'campaign_roster'
ON CONFLICT DO NOTHING;
