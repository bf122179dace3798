// Calendar-day arithmetic of the labelers. OMOP dates carry no time zone; every date is read as
// 00:00 UTC and every rule counts whole days, as the MedRep authors' code does with pandas dates.

export const DAY_MS = 86_400_000;

/** Day number (days since 1970-01-01 UTC) of an epoch-ms time. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/** 00:00 UTC of a day number, in epoch ms. */
export function dayStart(day: number): number {
  return day * DAY_MS;
}

/** Last millisecond of a day: a watermark at or past it has seen every record dated that day. */
export function dayEnd(day: number): number {
  return (day + 1) * DAY_MS - 1;
}

/**
 * The watermark that ends a batch: the last millisecond of the day of the dataset's latest record.
 * Not +infinity, so an outcome window the data do not cover stays censored; the end of that day
 * rather than the record's own time, because an OMOP extract covers whole days (most of its times
 * are dates at 00:00).
 */
export function finalWatermark(maxEventMs: number): number {
  return dayEnd(dayOf(maxEventMs));
}

/** yyyymmdd of a day number (proleptic Gregorian, UTC), without allocating a Date. */
export function ymdOfDay(day: number): number {
  // Howard Hinnant's civil_from_days.
  const z = day + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return y * 10000 + m * 100 + d;
}

/** Whole years from birth to `atMs` (the birthday counts on its day); negative before birth. */
export function ageYears(birthMs: number, atMs: number): number {
  // Difference of yyyymmdd numbers: the month-day part decides whether the birthday was reached.
  return Math.floor((ymdOfDay(dayOf(atMs)) - ymdOfDay(dayOf(birthMs))) / 10000);
}
