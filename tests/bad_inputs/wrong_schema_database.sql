CREATE TABLE runs (id INTEGER PRIMARY KEY, label TEXT);
INSERT INTO runs VALUES (1, 'not dialogforge');
