// SQL text shared by every DuckDB query: a string literal is quoted once, here.

/** A SQL string literal of `s`: single quotes around it, each quote inside doubled. */
export const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
