-- The system of record. Rows move forward only; the recorder's guarded UPDATEs enforce it.

CREATE TABLE tenants (
  id          text PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored as SHA-256 hashes, never in clear.
CREATE TABLE api_keys (
  id          bigserial PRIMARY KEY,
  tenant_id   text NOT NULL REFERENCES tenants (id),
  key_hash    bytea NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

CREATE TABLE avatars (
  id               text PRIMARY KEY,
  tenant_id        text NOT NULL REFERENCES tenants (id),
  name             text NOT NULL,
  training_type    text NOT NULL CHECK (training_type IN ('portrait', 'style')),
  status           text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'training', 'ready', 'failed')),
  images_data_url  text,
  model            jsonb,
  error            text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX avatars_tenant ON avatars (tenant_id);

CREATE TABLE trainings (
  id               text PRIMARY KEY,
  tenant_id        text NOT NULL REFERENCES tenants (id),
  avatar_id        text NOT NULL REFERENCES avatars (id),
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'submitted', 'in_progress', 'completed', 'failed', 'cancelled')),
  training_type    text NOT NULL,
  preset           text NOT NULL,
  trigger_phrase   text,
  images_data_url  text NOT NULL,
  overrides        jsonb,
  fal_request_id   text UNIQUE,
  fal_endpoint     text,
  result           jsonb,
  error            text,
  progress         real,
  attempts         integer NOT NULL DEFAULT 0,
  -- false until the job is in Redis: the sweep re-enqueues rows whose enqueue failed.
  enqueued         boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  submitted_at     timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trainings_open ON trainings (status, updated_at) WHERE status IN ('queued', 'submitted', 'in_progress');
CREATE INDEX trainings_avatar ON trainings (avatar_id);

CREATE TABLE generations (
  id               text PRIMARY KEY,
  tenant_id        text NOT NULL REFERENCES tenants (id),
  avatar_id        text NOT NULL REFERENCES avatars (id),
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'submitted', 'completed', 'failed', 'cancelled')),
  prompt           text NOT NULL,
  params           jsonb NOT NULL,
  model            jsonb NOT NULL,
  fal_request_id   text UNIQUE,
  fal_endpoint     text,
  images           jsonb NOT NULL DEFAULT '[]',
  error            text,
  attempts         integer NOT NULL DEFAULT 0,
  enqueued         boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  submitted_at     timestamptz,
  finished_at      timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generations_open ON generations (status, updated_at) WHERE status IN ('queued', 'submitted');

-- Completions that arrived before our worker's `submitted` bound their fal request id to a row.
CREATE TABLE parked_events (
  fal_request_id  text NOT NULL,
  type            text NOT NULL,
  event           jsonb NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (fal_request_id, type)
);

-- Second fal requests for one row (a crash between fal's answer and our record): cancelled at fal, counted.
CREATE TABLE duplicate_requests (
  fal_request_id  text PRIMARY KEY,
  entity          text NOT NULL,
  row_id          text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- Every status change, for operators and for the tests that prove a row reaches its terminal state once.
CREATE TABLE transitions (
  id              bigserial PRIMARY KEY,
  entity          text NOT NULL,
  row_id          text NOT NULL,
  from_status     text,
  to_status       text NOT NULL,
  source          text NOT NULL,
  fal_request_id  text,
  at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transitions_row ON transitions (entity, row_id);

CREATE TABLE idempotency_keys (
  tenant_id     text NOT NULL REFERENCES tenants (id),
  key           text NOT NULL,
  request_hash  text NOT NULL,
  status_code   integer,
  -- json, not jsonb: a replay must be byte-for-byte the first answer (jsonb reorders keys).
  response      json,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key)
);

-- Who did what, when, with which key (the key's id, never the key).
CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  tenant_id   text,
  api_key_id  bigint,
  action      text NOT NULL,
  entity      text NOT NULL,
  row_id      text NOT NULL,
  detail      jsonb,
  at          timestamptz NOT NULL DEFAULT now()
);
