/** `stride validate`: its flags, and an action that parses them and calls the runner. */

import type { Command } from 'commander';
import { type CommandContext, example } from '../options.js';

export function registerValidate(root: Command, { io }: CommandContext): void {
  example(
    root
      .command('validate')
      .description('check a plan and every case file without running anything')
      .argument('<plan>')
      .option('--json', 'print JSON'),
    'stride validate plan.yaml',
  ).action(async (planPath: string, flags: { json?: boolean }) => {
    const { planKind } = await import('../journal.js');
    if ((await planKind(planPath)) === 'action') {
      const { loadActionFile } = await import('../action.js');
      const { file, tools, warnings } = await loadActionFile(planPath, io.env);
      const edges = file.plan.steps.reduce((n, s) => n + (s.dependencies?.length ?? 0), 0);
      for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
      if (flags.json === true) {
        io.stdout.write(
          `${JSON.stringify({ plan: file.plan.id, kind: 'action', valid: true, steps: file.plan.steps.length, dependencies: edges, tools: [...new Set(file.plan.steps.map((s) => s.tool))], warnings })}\n`,
        );
      } else {
        io.stdout.write(
          `${planPath}: valid. action plan ${file.plan.id}: ${file.plan.steps.length} step(s), ${edges} dependenc${edges === 1 ? 'y' : 'ies'}; tools available: ${tools.names().join(', ')}\n`,
        );
      }
      return;
    }
    const { checkCases, loadPlan } = await import('../../plans/index.js');
    const manifest = await loadPlan(planPath, { checkCases: false, env: io.env });
    const stats = await checkCases(manifest);
    if (flags.json === true) {
      io.stdout.write(`${JSON.stringify({ plan: manifest.workflowId, valid: true, ...stats })}\n`);
      return;
    }
    const datasets = Object.entries(stats.byDataset)
      .map(([name, n]) => `${name === '' ? '(cases)' : name}: ${n}`)
      .join(', ');
    io.stdout.write(
      `${planPath}: valid. ${manifest.workflowId}: ${stats.total} case(s) (${datasets}); ${stats.selected} selected to run; ` +
        `target ${manifest.target?.type ?? '(none)'}, concurrency ${manifest.executionPolicy.concurrency}\n`,
    );
  });
}
