// The Kafka runner's generic machinery: connection options, topics, the OMOP row producer with
// its dead-letter topic, exactly-once stage workers with changelog-backed state, and health.
export * from './config';
export * from './topics';
export * from './deadLetter';
export * from './omopProducer';
export * from './stateStore';
export * from './readToEnd';
export * from './health';
export * from './stage';
export * from './copartitionAssigner';
export * from './commands';
