import type { OsConfigZonalServiceClient } from '@google-cloud/os-config';

// @google-cloud/os-config 4.3.1 keys its long-running and paging descriptors `...OSPolicyAssignment...`
// while the stub methods are named `...OsPolicyAssignment...`. Unpatched, create/update/delete return a
// raw Operation without promise() and list...Async yields response fields instead of assignments.
// test/osconfig-client-fix.test.ts fails once the library spells them alike; then delete this file.
// A mend of the client library, beside shared/clients.ts, which applies it: the adapters stand above both.

type Descriptors = { page: Record<string, unknown>; longrunning: Record<string, unknown> };

export function hasDescriptorSpellingBug(client: OsConfigZonalServiceClient): boolean {
  const d = (client as unknown as { descriptors: Descriptors }).descriptors;
  return 'createOSPolicyAssignment' in d.longrunning && !('createOsPolicyAssignment' in d.longrunning);
}

export function patchOsConfigDescriptors(client: OsConfigZonalServiceClient): OsConfigZonalServiceClient {
  const d = (client as unknown as { descriptors: Descriptors }).descriptors;
  for (const table of [d.page, d.longrunning]) {
    for (const [key, descriptor] of Object.entries(table)) {
      if (key.includes('OSPolicyAssignment'))
        table[key.replace('OSPolicyAssignment', 'OsPolicyAssignment')] ??= descriptor;
    }
  }
  return client;
}
