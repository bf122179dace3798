-- Reference implementation of the MedRep outcome tasks in plain DuckDB SQL, written apart from
-- transforms/labels so the tests can hold the labelers to it. Reads the views person,
-- visit_occurrence, death, condition_occurrence, concept, concept_relationship, concept_ancestor.
-- This file: helpers and the shared tables; one file per task family fills ref_samples.

-- SplitMix64 over 64-bit unsigned values, in 128-bit arithmetic reduced mod 2^64.
CREATE OR REPLACE MACRO ref_sm_a(z) AS (xor(z, z >> 30) * 13787848793156543929::UHUGEINT) % 18446744073709551616::UHUGEINT;
CREATE OR REPLACE MACRO ref_sm_b(z) AS (xor(z, z >> 27) * 10723151780598845931::UHUGEINT) % 18446744073709551616::UHUGEINT;
CREATE OR REPLACE MACRO ref_splitmix64(x) AS
  xor(ref_sm_b(ref_sm_a((x::UHUGEINT + 11400714819323198485::UHUGEINT) % 18446744073709551616::UHUGEINT)),
      ref_sm_b(ref_sm_a((x::UHUGEINT + 11400714819323198485::UHUGEINT) % 18446744073709551616::UHUGEINT)) >> 31);
-- Two's complement of a signed id as an unsigned 64-bit value.
CREATE OR REPLACE MACRO ref_u64(x) AS
  ((x::HUGEINT % 18446744073709551616::HUGEINT + 18446744073709551616::HUGEINT) % 18446744073709551616::HUGEINT)::UHUGEINT;
CREATE OR REPLACE MACRO ref_draw_key(seed, visit_id) AS ref_splitmix64(xor(ref_u64(visit_id), ref_splitmix64(ref_u64(seed))));
CREATE OR REPLACE MACRO ref_ms(d) AS epoch_ms(CAST(d AS TIMESTAMP));

CREATE OR REPLACE TABLE ref_samples (
  task VARCHAR, person_id BIGINT, prediction_time BIGINT, label INTEGER, labels INTEGER[],
  visit_id BIGINT, determined BOOLEAN);
CREATE OR REPLACE TABLE ref_excluded (task VARCHAR, rule VARCHAR, n BIGINT);

-- The last day the data cover: the day of the latest visit end (or start), death or condition.
CREATE OR REPLACE TABLE ref_data_end AS
SELECT max(d) AS last_day FROM (
  SELECT max(CAST(coalesce(visit_end_date, visit_start_date) AS DATE)) AS d FROM visit_occurrence
  UNION ALL SELECT max(CAST(death_date AS DATE)) FROM death
  UNION ALL SELECT max(CAST(coalesce(CAST(condition_start_datetime AS TIMESTAMP), CAST(condition_start_date AS TIMESTAMP)) AS DATE))
            FROM condition_occurrence);

CREATE OR REPLACE TABLE ref_person AS
SELECT person_id,
       coalesce(CAST(birth_datetime AS DATE),
                TRY_CAST(printf('%04d-%02d-%02d', year_of_birth, coalesce(month_of_birth, 1), coalesce(day_of_birth, 1)) AS DATE)) AS birth
FROM person;

CREATE OR REPLACE TABLE ref_death AS
SELECT person_id, min(CAST(death_date AS DATE)) AS death FROM death WHERE death_date IS NOT NULL GROUP BY person_id;

-- Candidate stays: inpatient (9201) and ER-and-inpatient (262) visits, with age on the admission day.
CREATE OR REPLACE TABLE ref_stay AS
SELECT v.visit_occurrence_id AS visit_id, v.person_id,
       CAST(v.visit_start_date AS DATE) AS s, CAST(v.visit_end_date AS DATE) AS e,
       p.birth, d.death,
       datepart('year', age(CAST(v.visit_start_date AS TIMESTAMP), CAST(p.birth AS TIMESTAMP))) AS age
FROM visit_occurrence v
LEFT JOIN ref_person p ON p.person_id = v.person_id
LEFT JOIN ref_death d ON d.person_id = v.person_id
WHERE v.visit_concept_id IN (9201, 262) AND v.visit_start_date IS NOT NULL;

CREATE OR REPLACE TABLE ref_condition AS
SELECT person_id, condition_concept_id AS concept_id,
       coalesce(CAST(condition_start_datetime AS TIMESTAMP), CAST(condition_start_date AS TIMESTAMP)) AS t
FROM condition_occurrence
WHERE coalesce(condition_start_datetime, condition_start_date) IS NOT NULL;

-- Base rules, first failing one: no person, age outside 18-100, no end date, stay too short.
CREATE OR REPLACE MACRO ref_base_rule(birth, age, s, e, min_days) AS
  CASE WHEN birth IS NULL THEN 'no_person'
       WHEN age < 18 OR age > 100 THEN 'age_out_of_range'
       WHEN e IS NULL THEN 'no_end_date'
       WHEN e - s < min_days THEN 'stay_shorter_than_min' END;
