// Whether a worker holds its share of the group's partitions. The co-partitioned assigner gives
// every member floor(P / members) or more, so a member holding less was assigned in a generation
// that did not count it: a rejoin gives it its share, and leaving as idle would leave that share
// to the others. A group still rebalancing may yet give partitions to anyone.
import { Admin } from 'kafkajs';

export interface GroupShare {
  /** The broker's group state: anything but Stable is a rebalance under way. */
  state: string;
  members: number;
  /** The fewest partitions a member of this group is given. */
  fairShare: number;
}

export async function groupShare(admin: Admin, groupId: string, partitions: number): Promise<GroupShare> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups.find((g) => g.groupId === groupId);
  const members = group?.members.length ?? 0;
  return { state: group?.state ?? 'Unknown', members, fairShare: members === 0 ? 0 : Math.floor(partitions / members) };
}

/** What keeps a worker whose own partitions are consumed from leaving: a rebalance under way (wait), or too few partitions (rejoin). */
export type ShareShortfall = { wait: string } | { rejoin: string } | null;

export function shareShortfall(share: GroupShare, assigned: number): ShareShortfall {
  if (share.state !== 'Stable') return { wait: `group ${share.state.toLowerCase()}` };
  if (assigned < share.fairShare) return { rejoin: `${assigned} partitions of a fair share of ${share.fairShare} (${share.members} members)` };
  return null;
}
