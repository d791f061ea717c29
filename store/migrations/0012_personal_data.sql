-- Personal data in one place, encrypted per subject, erasable (issue 21;
-- store/personal_data.py, docs/personal_data.md).
--
-- Never edit once applied: add a new file instead.

-- ---------------------------------------------------------------------------
-- One row per subject: a bundle of personal fields (a customer, an address,
-- an employee, a message...) as one AES-GCM ciphertext under the subject's own
-- data key, the data key wrapped by a master key of the keyring (its id
-- beside it). Erasure nulls the wrapped key and the ciphertext and keeps the
-- row, so every reference still resolves, to "erased".
-- ---------------------------------------------------------------------------
CREATE TABLE personal_subjects (
    subject_id      text        PRIMARY KEY CHECK (subject_id ~ '^subj_[A-Za-z0-9_-]{8,64}$'),
    kind            text        NOT NULL,
    -- The person subject this one belongs to (an address's customer).
    owner_id        text,
    master_key_id   text,
    wrapped_key     bytea,
    ciphertext      bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    erased_at       timestamptz,
    erasure_reason  text,
    CHECK ((erased_at IS NULL) = (wrapped_key IS NOT NULL AND ciphertext IS NOT NULL
                                  AND master_key_id IS NOT NULL))
);

CREATE INDEX personal_subjects_owner_idx ON personal_subjects (owner_id)
    WHERE owner_id IS NOT NULL;
CREATE INDEX personal_subjects_master_key_idx ON personal_subjects (master_key_id)
    WHERE erased_at IS NULL;

-- Keyed fingerprints (HMAC) of the fields a privacy request matches on
-- (email, phone); deleted at erasure.
CREATE TABLE personal_fingerprints (
    subject_id   text NOT NULL REFERENCES personal_subjects (subject_id),
    field        text NOT NULL,
    fingerprint  text NOT NULL,
    PRIMARY KEY (subject_id, field)
);

CREATE INDEX personal_fingerprints_idx ON personal_fingerprints (fingerprint);

-- The business records a subject appears in (order, shipment, rma, dispute,
-- campaign...): legal holds and access exports start from these.
CREATE TABLE personal_subject_refs (
    subject_id  text NOT NULL REFERENCES personal_subjects (subject_id),
    ref_kind    text NOT NULL,
    ref_id      text NOT NULL,
    PRIMARY KEY (subject_id, ref_kind, ref_id)
);

CREATE INDEX personal_subject_refs_ref_idx ON personal_subject_refs (ref_kind, ref_id);
