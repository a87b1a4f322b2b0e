-- Where each connector has read up to (a file tail's offsets per file; later queue and
-- topic positions), saved only after what was read is durable in Dozor.
CREATE TABLE source_checkpoints (
    source      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (source, key)
);
