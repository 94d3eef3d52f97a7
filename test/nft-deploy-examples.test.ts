// The shipped deployment examples agree with the guard: the Kubernetes sidecar's embedded config
// confines the agent container's UID and exempts Sluice's, the image runs as that UID, and the
// state directory lives on a persistent volume.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { PACKAGE_ROOT } from '../src/config/package-root.js';
import { configSchema } from '../src/config/schema.js';
import { loadYamlText } from '../src/config/yaml.js';
import { guardSpecFromConfig } from '../src/guard/spec.js';

interface ContainerSpec {
  name: string;
  args?: string[];
  securityContext?: { runAsUser?: number; capabilities?: { add?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface Workload {
  kind: string;
  spec: {
    template: { spec: { initContainers: ContainerSpec[]; containers: ContainerSpec[]; volumes?: { name: string }[]; securityContext?: { fsGroup?: number } } };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}

async function sidecar(): Promise<{ config: string; init: ContainerSpec[]; containers: ContainerSpec[]; workload: Workload }> {
  const docs = parseAllDocuments(await readFile(join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'sidecar.yaml'), 'utf8')).map((doc) => doc.toJS() as Record<string, unknown>);
  const configMap = docs.find((doc) => doc['kind'] === 'ConfigMap') as { data: Record<string, string> };
  const workload = docs.find((doc) => doc['kind'] === 'StatefulSet' || doc['kind'] === 'Deployment') as unknown as Workload;
  return { config: configMap.data['sluice.yaml'] ?? '', init: workload.spec.template.spec.initContainers, containers: workload.spec.template.spec.containers, workload };
}

test('the sidecar example confines the agent container\'s uid and exempts Sluice\'s', async () => {
  const { config, init, containers } = await sidecar();
  const spec = guardSpecFromConfig(loadYamlText('sidecar.yaml#sluice.yaml', config, configSchema).value);
  const agent = containers.find((container) => container.name === 'agent');
  const sluice = init.find((container) => container.name === 'sluice');
  assert.ok(spec.agentUids.includes(agent?.securityContext?.runAsUser ?? -1));
  assert.equal(spec.sluiceUser, sluice?.securityContext?.runAsUser);
});

test('only the guard init container gets NET_ADMIN, and it runs nft apply first', async () => {
  const { init, containers } = await sidecar();
  const withNetAdmin = [...init, ...containers].filter((container) => container.securityContext?.capabilities?.add?.includes('NET_ADMIN'));
  assert.deepEqual(withNetAdmin.map((container) => container.name), ['sluice-guard']);
  assert.deepEqual(init[0]?.args?.slice(0, 2), ['nft', 'apply']);
});

test('the image runs as the uid the sidecar example exempts', async () => {
  const dockerfile = await readFile(join(PACKAGE_ROOT, 'Dockerfile'), 'utf8');
  const { init } = await sidecar();
  const uid = /^USER (\d+):/m.exec(dockerfile)?.[1];
  assert.equal(Number(uid), init.find((container) => container.name === 'sluice')?.securityContext?.runAsUser);
  assert.match(dockerfile, /^HEALTHCHECK [^\n]*\\\n\s*CMD [^\n]*\/healthz/m);
});

test('the sidecar example keeps Sluice\'s state on a persistent volume claim, writable by its uid', async () => {
  const { init, workload } = await sidecar();
  const sluice = init.find((container) => container.name === 'sluice');
  const state = sluice?.volumeMounts?.find((mount) => mount.mountPath === '/var/lib/sluice');
  assert.ok(state !== undefined, 'the sluice container mounts /var/lib/sluice');
  // An emptyDir dies with the pod, and with it the bundle floor and the audit chain.
  assert.equal(workload.kind, 'StatefulSet');
  assert.deepEqual(workload.spec.template.spec.volumes?.filter((volume) => volume.name === state.name) ?? [], [], `${state.name} is not a pod volume`);
  assert.deepEqual(workload.spec.volumeClaimTemplates?.map((claim) => claim.metadata.name), [state.name]);
  assert.equal(workload.spec.template.spec.securityContext?.fsGroup, sluice?.securityContext?.runAsUser);
});
