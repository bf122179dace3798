// Partition assignment that keeps co-partitioned topics together: a member that owns partition N
// owns partition N of every input topic. A person's rows of all tables are in the same partition
// number (same key, same partition count), so one worker sees all of them and the per-partition
// transactional id and state store have exactly one owner. kafkajs' round-robin assigner spreads
// topic-partitions independently and would split them.
import { AssignerProtocol, PartitionAssigner } from 'kafkajs';

export const COPARTITION_ASSIGNER_NAME = 'MedrepCopartitioned';

export const copartitionAssigner: PartitionAssigner = ({ cluster }) => ({
  name: COPARTITION_ASSIGNER_NAME,
  version: 0,

  async assign({ members, topics }) {
    const memberIds = members.map((m) => m.memberId).sort();
    const counts = topics.map((t) => cluster.findTopicPartitionMetadata(t).length);
    const partitions = Math.max(0, ...counts);
    const assignment = new Map<string, Record<string, number[]>>();
    for (const id of memberIds) assignment.set(id, Object.fromEntries(topics.map((t) => [t, [] as number[]])));
    for (let p = 0; p < partitions; p++) {
      const owner = assignment.get(memberIds[p % memberIds.length])!;
      topics.forEach((t, i) => {
        if (p < counts[i]) owner[t].push(p);
      });
    }
    return memberIds.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 0,
        assignment: assignment.get(memberId)!,
        userData: Buffer.alloc(0),
      }),
    }));
  },

  protocol({ topics }) {
    return {
      name: COPARTITION_ASSIGNER_NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    };
  },
});
