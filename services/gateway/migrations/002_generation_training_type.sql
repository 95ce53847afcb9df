-- A generation carries its avatar's kind: its default finetune_strength depends on it, and metrics label by it.
ALTER TABLE generations ADD COLUMN training_type text;
UPDATE generations g SET training_type = a.training_type FROM avatars a WHERE a.id = g.avatar_id;
ALTER TABLE generations ALTER COLUMN training_type SET NOT NULL;
ALTER TABLE generations ADD CONSTRAINT generations_training_type CHECK (training_type IN ('portrait', 'style'));
