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

/** Whole years from birth to `atMs` (the birthday counts on its day); negative before birth. */
export function ageYears(birthMs: number, atMs: number): number {
  const b = new Date(birthMs);
  const d = new Date(atMs);
  let age = d.getUTCFullYear() - b.getUTCFullYear();
  const beforeBirthday =
    d.getUTCMonth() < b.getUTCMonth() || (d.getUTCMonth() === b.getUTCMonth() && d.getUTCDate() < b.getUTCDate());
  if (beforeBirthday) age -= 1;
  return age;
}
