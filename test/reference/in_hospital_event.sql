-- In-hospital event {{TASK}} (UTI, sepsis, pneumonia, MI, fracture): adult inpatient stays of at
-- least 2 days starting before death, without a code of the set on the admission day. Case: the
-- latest stay with a code dated in the stay, prediction at 00:00 of the day before the first
-- code. Control: the latest stay, prediction at 00:00 of admission day + draw mod length.
CREATE OR REPLACE TEMP TABLE ref_ev_stay AS
SELECT st.*,
  (SELECT min(CAST(c.t AS DATE)) FROM ref_condition c
   JOIN ref_concept_set cs ON cs.task = '{{TASK}}' AND cs.concept_id = c.concept_id
   WHERE c.person_id = st.person_id AND CAST(c.t AS DATE) BETWEEN st.s AND st.e) AS first_day
FROM ref_stay st;

CREATE OR REPLACE TEMP TABLE ref_ev_rule AS
SELECT *, coalesce(ref_base_rule(birth, age, s, e, 2),
                   CASE WHEN death IS NOT NULL AND s >= death THEN 'starts_on_or_after_death' END,
                   CASE WHEN first_day = s THEN 'event_on_admission_day' END) AS rule
FROM ref_ev_stay;

INSERT INTO ref_excluded SELECT '{{TASK}}', rule, count(*) FROM ref_ev_rule WHERE rule IS NOT NULL GROUP BY ALL;

INSERT INTO ref_samples
SELECT '{{TASK}}', person_id,
       CASE WHEN first_day IS NOT NULL THEN ref_ms(first_day - 1)
            ELSE ref_ms(s + CAST(ref_draw_key({{SEED}}, visit_id) % CAST(e - s AS UHUGEINT) AS INTEGER)) END,
       (first_day IS NOT NULL)::INTEGER, NULL, visit_id, true
FROM ref_ev_rule WHERE rule IS NULL
QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY (first_day IS NOT NULL) DESC, s DESC, e DESC, visit_id DESC) = 1;
