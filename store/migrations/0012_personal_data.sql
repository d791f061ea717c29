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

-- ---------------------------------------------------------------------------
-- Personal data moved out of older tables. The database never holds the master
-- key, so this migration cannot encrypt: it moves the values here and strips
-- them from their source in the same transaction, and the first Steward
-- process that starts with the keyring (steward migrate / up / the worker:
-- personal_data.seal_pending) encrypts them into subjects, points the source
-- row at its subject and deletes the row here.
-- ---------------------------------------------------------------------------
CREATE TABLE personal_data_pending (
    source     text  NOT NULL,
    source_id  text  NOT NULL,
    kind       text  NOT NULL,
    refs       jsonb NOT NULL DEFAULT '[]'::jsonb,
    fields     jsonb NOT NULL,
    PRIMARY KEY (source, source_id)
);

-- Shipments: the order's customer (email, name, phone), its billing and
-- shipping addresses, the device's IP address and the reship destination move
-- into one subject per shipment (kind 'shipment'); `record` keeps the rest
-- (countries, items, payment references, dates). The paths are
-- store/deliveries.py's SHIPMENT_PERSONAL_PATHS.
ALTER TABLE shipments ADD COLUMN subject_id text;

INSERT INTO personal_data_pending (source, source_id, kind, refs, fields)
SELECT 'shipments', s.shipment_id, 'shipment',
       jsonb_build_array(jsonb_build_array('order', s.order_id),
                         jsonb_build_array('shipment', s.shipment_id)),
       jsonb_strip_nulls(jsonb_build_object(
           'order.customer.email', s.record #>> '{order,customer,email}',
           'order.customer.full_name', s.record #>> '{order,customer,full_name}',
           'order.customer.phone', s.record #>> '{order,customer,phone}',
           'order.billing_address.line1', s.record #>> '{order,billing_address,line1}',
           'order.billing_address.line2', s.record #>> '{order,billing_address,line2}',
           'order.billing_address.city', s.record #>> '{order,billing_address,city}',
           'order.billing_address.postal_code', s.record #>> '{order,billing_address,postal_code}',
           'order.billing_address.region', s.record #>> '{order,billing_address,region}',
           'order.shipping_address.line1', s.record #>> '{order,shipping_address,line1}',
           'order.shipping_address.line2', s.record #>> '{order,shipping_address,line2}',
           'order.shipping_address.city', s.record #>> '{order,shipping_address,city}',
           'order.shipping_address.postal_code',
               s.record #>> '{order,shipping_address,postal_code}',
           'order.shipping_address.region', s.record #>> '{order,shipping_address,region}',
           'order.device.ip_address', s.record #>> '{order,device,ip_address}',
           'destination.line1', s.record #>> '{destination,line1}',
           'destination.line2', s.record #>> '{destination,line2}',
           'destination.city', s.record #>> '{destination,city}',
           'destination.postal_code', s.record #>> '{destination,postal_code}',
           'destination.region', s.record #>> '{destination,region}'
       ))
FROM shipments s;

UPDATE shipments SET record = record
    #- '{order,customer,email}' #- '{order,customer,full_name}' #- '{order,customer,phone}'
    #- '{order,billing_address,line1}' #- '{order,billing_address,line2}'
    #- '{order,billing_address,city}' #- '{order,billing_address,postal_code}'
    #- '{order,billing_address,region}'
    #- '{order,shipping_address,line1}' #- '{order,shipping_address,line2}'
    #- '{order,shipping_address,city}' #- '{order,shipping_address,postal_code}'
    #- '{order,shipping_address,region}'
    #- '{order,device,ip_address}'
    #- '{destination,line1}' #- '{destination,line2}' #- '{destination,city}'
    #- '{destination,postal_code}' #- '{destination,region}';
