// Outcome labels of the MedRep tasks: task definitions, the per-person task logic, and the
// incremental labeler that both runners use.
export * from './time';
export * from './draw';
export * from './records';
export * from './taskDefinition';
export * from './evaluate';
export * from './incremental';
export * from './snapshot';
export * from './batch';
export * from './horizon';
