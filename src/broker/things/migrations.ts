import type { Migrations } from '../../store/store.js';

export const thingsMigrations: Migrations = [
  `CREATE TABLE things (
     name TEXT PRIMARY KEY,
     password_hash TEXT,
     cert_fingerprint TEXT UNIQUE,
     policy TEXT,
     created_at INTEGER NOT NULL
   )`,
];
