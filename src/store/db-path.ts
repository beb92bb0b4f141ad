/**
 * Where the CLI keeps its database unless told otherwise. In a file of its own so the CLI can
 * declare its `--db` default without loading the SQLite store.
 */
export const DEFAULT_DB_PATH = '.stride/stride.db';
