import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  listProfiles,
  loadProfile,
  parseProfile,
  validateProfile,
  backboneSettings,
  resolveImageFolder,
} from '../../../src/node/bench/profile.js';
import { isEdgetlError } from '../../../src/core/util/errors.js';

const SHIPPED = [
  'browser-wasm',
  'browser-webgpu',
  'jetson-orin-nano',
  'nvidia-cuda',
  'raspberry-pi-5',
  'swiftshader-webgpu',
  'x86-cpu',
  'x86-cpu-quick',
];

function validProfile(): Record<string, unknown> {
  return JSON.parse(
    readFileSync(join(import.meta.dirname, '..', '..', '..', 'device-profiles', 'x86-cpu-quick.json'), 'utf8'),
  ) as Record<string, unknown>;
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isEdgetlError(error)) return error.message;
    throw error;
  }
  throw new Error('expected an EdgetlError, nothing was thrown');
}

t.test('every shipped profile loads by name and validates', async (t) => {
  t.same(
    listProfiles()
      .filter((n) => SHIPPED.includes(n))
      .sort(),
    SHIPPED,
  );
  for (const name of SHIPPED) {
    const loaded = loadProfile(name);
    t.equal(loaded.profile.name, name, `${name}: name field matches the file name`);
    t.ok(loaded.profile.source.length > 20, `${name}: says where its facts come from`);
  }
});

t.test('profiles for hardware we do not have say so and name the vendor source', async (t) => {
  for (const name of ['raspberry-pi-5', 'jetson-orin-nano', 'nvidia-cuda']) {
    const { profile } = loadProfile(name);
    t.match(profile.source, /not measured/i, `${name} says it was not measured here`);
    t.ok((profile.device?.references ?? []).length > 0, `${name} cites the vendor's published specification`);
  }
  t.equal(loadProfile('swiftshader-webgpu').profile.purpose, 'correctness');
});

t.test('an unknown profile name lists the shipped ones', async (t) => {
  const message = messageOf(() => loadProfile('no-such-device'));
  t.match(message, /no device profile named "no-such-device"/);
  t.match(message, /x86-cpu-quick/);
  t.match(
    messageOf(() => loadProfile('/nowhere/else.json')),
    /\/nowhere\/else\.json does not exist/,
  );
});

t.test('invalid JSON names the file', async (t) => {
  t.match(
    messageOf(() => parseProfile('{"format":', '/p/broken.json')),
    /device profile \/p\/broken\.json is not valid JSON/,
  );
});

t.test('schema violations name the file and the field', async (t) => {
  const missing = validProfile();
  delete missing.measurement;
  t.match(
    messageOf(() => validateProfile(missing, 'a.json')),
    /device profile a\.json is invalid: measurement is required but missing/,
  );

  const wrongType = validProfile();
  (wrongType.measurement as Record<string, unknown>).minRuns = 'many';
  t.match(
    messageOf(() => validateProfile(wrongType, 'b.json')),
    /b\.json.*measurement\.minRuns must be integer, got string "many"/,
  );

  const badProvider = validProfile();
  (badProvider.execution as Record<string, unknown>).providers = ['cpu', 'tpu'];
  t.match(
    messageOf(() => validateProfile(badProvider, 'c.json')),
    /execution\.providers\[1\] must be one of "cpu", "webgpu", "cuda", "wasm", got "tpu"/,
  );

  const typo = validProfile();
  typo.batchsizes = [1];
  t.match(
    messageOf(() => validateProfile(typo, 'd.json')),
    /batchsizes is not a known field/,
  );

  const zeroBatch = validProfile();
  zeroBatch.batchSizes = [0, 8];
  t.match(
    messageOf(() => validateProfile(zeroBatch, 'e.json')),
    /batchSizes\[0\] must be at least 1, got 0/,
  );

  const emptyBudget = validProfile();
  emptyBudget.budgets = [{ name: 'nothing to check' }];
  t.match(
    messageOf(() => validateProfile(emptyBudget, 'f.json')),
    /budgets\[0\] matches none of the allowed forms/,
  );

  const wrongFormat = validProfile();
  wrongFormat.format = 'edgetl-device-profile/2';
  t.match(
    messageOf(() => validateProfile(wrongFormat, 'g.json')),
    /format must be "edgetl-device-profile\/1"/,
  );
});

t.test('budgets must refer to what the profile measures', async (t) => {
  const profile = validProfile();
  profile.budgets = [
    { name: 'x', backbone: 'resnet18-v1-7', p95LatencyMsPerImage: 5 },
    { name: 'y', provider: 'cuda', minImagesPerSecond: 5 },
    { name: 'z', batch: 3, maxPeakMemoryMb: 5 },
  ];
  const message = messageOf(() => validateProfile(profile, 'h.json'));
  t.match(message, /budgets\[0\]\.backbone "resnet18-v1-7" is not one of the profile's backbones/);
  t.match(message, /budgets\[1\]\.provider "cuda" is not one of execution\.providers/);
  t.match(message, /budgets\[2\]\.batch 3 is not one of the profile's batch sizes/);
});

t.test('measurement windows must be ordered and backbones unique', async (t) => {
  const profile = validProfile();
  (profile.measurement as Record<string, unknown>).maxDurationMs = 10;
  (profile.measurement as Record<string, unknown>).minDurationMs = 100;
  profile.backbones = ['mobilenetv2-12-int8', 'mobilenetv2-12-int8'];
  profile.budgets = [];
  const message = messageOf(() => validateProfile(profile, 'i.json'));
  t.match(message, /measurement\.maxDurationMs \(10\) must not be below measurement\.minDurationMs \(100\)/);
  t.match(message, /backbones\[1\] repeats "mobilenetv2-12-int8"/);
});

t.test('per-backbone settings override the profile batch sizes', async (t) => {
  const profile = validateProfile(
    { ...validProfile(), backbones: ['a', { id: 'b', batchSizes: [4], intraOpThreads: 1 }], budgets: [] },
    'j.json',
  );
  t.same(
    backboneSettings(profile).map((s) => [s.id, s.batchSizes]),
    [
      ['a', [1, 8]],
      ['b', [4]],
    ],
  );
});

t.test('image folders: $EDGETL_DATA_PATH or relative to the profile file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgetl-profile-'));
  const file = join(dir, 'p.json');
  writeFileSync(file, JSON.stringify(validProfile()));
  const saved = process.env.EDGETL_DATA_PATH;
  process.env.EDGETL_DATA_PATH = '/data/shared';
  t.teardown(() => {
    if (saved === undefined) delete process.env.EDGETL_DATA_PATH;
    else process.env.EDGETL_DATA_PATH = saved;
  });
  t.equal(resolveImageFolder('$EDGETL_DATA_PATH/images', file), '/data/shared/images');
  t.equal(resolveImageFolder('pics', file), join(dir, 'pics'));
  t.equal(loadProfile(file).file, file);
});

t.test('the Node CLI refuses browser profiles, naming the file', async (t) => {
  const { benchCommand } = await import('../../../src/node/cli/bench.js');
  await t.rejects(benchCommand.run(['--profile', 'browser-webgpu']), {
    message: /profile browser-webgpu \(.*browser-webgpu\.json\) is for the browser runtime/,
  });
  await t.rejects(benchCommand.run([]), { message: /--profile is required: one of .*x86-cpu-quick/ });
  await t.rejects(benchCommand.run(['--profile', 'x86-cpu-quick', '--batch', 'two']), {
    message: /--batch must be a whole number, got "two"/,
  });
});

t.test('command-line overrides re-validate the profile and drop budgets they orphan', async (t) => {
  const { applyOverrides } = await import('../../../src/node/cli/bench.js');
  const loaded = loadProfile('x86-cpu-quick');
  const { loaded: narrowed, notes } = applyOverrides(loaded, {
    backbones: ['mobilenetv2-12-int8'],
    providers: [],
    batches: [8],
    minRuns: 3,
  });
  t.same(narrowed.profile.backbones, ['mobilenetv2-12-int8']);
  t.same(narrowed.profile.batchSizes, [8]);
  t.equal(narrowed.profile.measurement.minRuns, 3);
  t.ok(
    (narrowed.profile.budgets ?? []).every(
      (b) =>
        (b.backbone === undefined || b.backbone === 'mobilenetv2-12-int8') && (b.batch === undefined || b.batch === 8),
    ),
  );
  t.match(notes.join('\n'), /budget\(s\) dropped/);
  t.equal(loaded.profile.batchSizes.length, 2, 'the loaded profile itself is untouched');
  t.throws(() => applyOverrides(loaded, { backbones: [], providers: ['tpu'], batches: [] }), {
    message: /--provider must be one of cpu, webgpu, cuda, wasm, got "tpu"/,
  });
});
