const { Kafka, logLevel } = require('kafkajs');
const { consumerGroupLag } = require('./dist/pipelines/kafka/health');
const { TopicNames } = require('./dist/pipelines/kafka/topics');
(async()=>{const k=new Kafka({brokers:['127.0.0.1:9092'],logLevel:logLevel.NOTHING});const a=k.admin();await a.connect();
const n=new TopicNames(process.argv[2]);
for (const s of ['trajectory','sink']){const l=await consumerGroupLag(a,n.group(s));console.log(s, JSON.stringify(l,(k,v)=>typeof v==='bigint'?v.toString():v));}
await a.disconnect();})();
