// Birth time of a person row in SQL: birth_datetime, else year/month/day (missing parts = 1).
export const BIRTH_TIMESTAMP_SQL = (alias: string): string =>
  `coalesce(${alias}.birth_datetime,
     CAST(TRY_CAST(printf('%04d-%02d-%02d', ${alias}.year_of_birth, coalesce(${alias}.month_of_birth, 1), coalesce(${alias}.day_of_birth, 1)) AS DATE) AS TIMESTAMP),
     make_timestamp(${alias}.year_of_birth, 1, 1, 0, 0, 0))`;
