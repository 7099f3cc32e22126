import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackbone } from '../../../src/node/select/select.js';
import { sharedModel, sharedPath } from '../../helpers/shared.js';

const train = sharedPath('datasets/hymenoptera/train');
const mobilenet = sharedModel('mobilenetv2-12-int8.onnx');
const resnet8 = sharedModel('resnet8-cifar10.fp32.onnx');
const skip = train.skip || mobilenet.skip || resnet8.skip;

t.test(
  'hymenoptera: ImageNet features clearly beat raw pixels, the CIFAR ResNet-8 shows negative transfer',
  { skip },
  async (t) => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'edgetl-select-hym-'));
    const saved = process.env.EDGETL_CACHE_DIR;
    process.env.EDGETL_CACHE_DIR = cacheDir;
    t.teardown(async () => {
      if (saved === undefined) delete process.env.EDGETL_CACHE_DIR;
      else process.env.EDGETL_CACHE_DIR = saved;
      await rm(cacheDir, { recursive: true, force: true });
    });
    const result = await selectBackbone(train.path!, {
      backbones: [mobilenet.path!, resnet8.path!],
      load: { ep: 'cpu' },
    });
    t.equal(result.images, 244);
    const [mnet, rnet] = result.candidates;
    t.equal(mnet!.status, 'ok', mnet!.error ?? '');
    t.equal(rnet!.status, 'ok', rnet!.error ?? '');
    t.ok(
      result.baseline.accuracy! > 0.5 && result.baseline.accuracy! < 0.8,
      `raw 16x16 pixels: ${result.baseline.accuracy}`,
    );
    t.ok(mnet!.accuracy! > 0.9, `MobileNetV2 held-out accuracy ${mnet!.accuracy}`);
    t.equal(mnet!.negativeTransfer, false, mnet!.negativeTransferReason ?? '');
    t.equal(
      rnet!.negativeTransfer,
      true,
      `ResNet-8 (CIFAR 32x32) on ant and bee photos: ${rnet!.negativeTransferReason}`,
    );
    t.ok(mnet!.gainOverBaseline!.points > 20);
    t.equal(result.recommended, mobilenet.path, 'the recommendation names the backbone as given');
    t.ok(mnet!.msPerImage! > 0 && rnet!.msPerImage! > 0);
    t.ok(mnet!.embedded.computed + mnet!.embedded.cacheHits === 244);
  },
);
