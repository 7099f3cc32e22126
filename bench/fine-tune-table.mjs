// Markdown table of bench/fine-tune.ts results (JSON files given as arguments); figures are read, never typed.
import { readFileSync } from 'node:fs';

const pct = (v) => (100 * v).toFixed(1);
const rows = process.argv.slice(2).map((file) => JSON.parse(readFileSync(file, 'utf8')));
console.log(
  '| backbone | dataset (train/val) | frozen val | fine-tune val | decision (out-of-fold frozen -> best fine-tuned) | epochs | fine-tune s (activations + training) | total s | head KiB | peak RSS MiB | load avg start -> end |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const f = r.fineTune;
  const cv = f.crossValidation;
  const set = r.train.split('/').slice(-2, -1)[0];
  console.log(
    `| ${r.backbone
      .split('/')
      .pop()
      .replace(
        /\.onnx$/,
        '',
      )} | ${set} (${r.trainImages}/${r.valImages})${r.flip ? ' + flip' : ''} | ${pct(r.frozen.valAccuracy)}% | ${pct(f.valAccuracy)}% | ${f.outcome} (${cv ? `${pct(cv.frozenAccuracy)}% -> ${pct(cv.fineTunedAccuracy)}%` : f.reason}) | ${f.chosenEpochs ?? '-'} | ${f.seconds.toFixed(0)} (${f.activationSeconds.toFixed(0)} + ${f.trainSeconds.toFixed(0)}) | ${r.totalSeconds.toFixed(0)} | ${r.headBytes ? (r.headBytes / 1024).toFixed(0) : '-'} | ${f.memory ? (f.memory.peakRssBytes / 2 ** 20).toFixed(0) : '-'} | ${r.host.loadAverageAtStart.toFixed(1)} -> ${r.host.loadAverageAtEnd.toFixed(1)} |`,
  );
}
