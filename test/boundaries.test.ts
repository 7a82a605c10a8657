/**
 * The layering of the code base, checked on its import graph. Every .ts file is read and its imports are
 * collected by TypeScript's own pre-processor (`import ... from`, `export ... from`, `import '...'`,
 * `import('...')` with a literal). The rules, on direct imports:
 * - rating/ imports only its declared libraries (decimal.js, luxon, zod), other rating/ files and
 *   common/time.ts; its test files (*.test.ts, *.bench.ts) may also import vitest, fast-check, node:* and
 *   those test/support/ files that reach, transitively, nothing of ours but rating/, common/time.ts and
 *   test/support/ (test-only loaders of shared test material, such as the peer suite's; never the stack).
 * - common/ imports no folder of ours; its test files may also import test/support/.
 * - gateway/ never imports billing-api/, nor billing-api/ gateway/ (test files included: they reach the
 *   other side through test/support/).
 * - only app/ imports both gateway/ and billing-api/; nothing but app/, test/ and the test files of
 *   other folders imports app/.
 * - the gateway-only process (app/gateway.main.ts) does not load billing-api/ nor Fastify, transitively.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', '.git', 'data', 'dist', '.data']);

/** Every .ts file of the repository, relative to its root with forward slashes. */
function sourceFiles(dir = ROOT): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(relative(ROOT, path).split('\\').join('/'));
  }
  return files;
}

/** An import: a file of ours (path from the root, .ts) or a package (its name, or node:x for built-ins). */
interface Import {
  file?: string;
  pkg?: string;
}

function importsOf(file: string): Import[] {
  const info = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
  return info.importedFiles.map(({ fileName }) => {
    if (fileName.startsWith('.')) {
      const target = relative(ROOT, resolve(ROOT, dirname(file), fileName)).split('\\').join('/');
      return { file: target.replace(/\.js$/, '.ts') };
    }
    const parts = fileName.split('/');
    return { pkg: fileName.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] };
  });
}

const top = (path: string) => path.split('/')[0];
const isTest = (file: string) => /\.(test|bench)\.ts$/.test(file);
const files = sourceFiles();
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const ours = (file: string) => graph.get(file)!.filter((i) => i.file).map((i) => i.file!);
const packages = (file: string) => graph.get(file)!.filter((i) => i.pkg).map((i) => i.pkg!);

/**
 * A test/support/ file that a rating/ test may import: it reaches, through its imports of ours, nothing
 * but rating/, common/time.ts and other such test/support/ files.
 */
function pureTestSupport(file: string, seen = new Set<string>()): boolean {
  if (seen.has(file)) return true;
  seen.add(file);
  if (top(file) === 'rating' || file === 'common/time.ts') return true;
  if (!file.startsWith('test/support/') || !graph.has(file)) return false;
  return ours(file).every((target) => pureTestSupport(target, seen));
}

describe('boundaries of the import graph', () => {
  it('reads the whole code base', () => {
    for (const folder of ['app', 'common', 'gateway', 'billing-api', 'rating', 'simulator', 'bench', 'test']) {
      expect(files.some((f) => top(f) === folder), folder).toBe(true);
    }
    // every import of ours names a file that exists
    const missing = files.flatMap((f) => ours(f).filter((t) => !graph.has(t) && !t.endsWith('.json')).map((t) => `${f} -> ${t}`));
    expect(missing).toEqual([]);
  });

  it('rating/ imports only decimal.js, luxon, zod and common/time.ts', () => {
    const libraries = new Set(['decimal.js', 'luxon', 'zod']);
    const testLibraries = new Set(['vitest', 'fast-check']);
    const offending: string[] = [];
    for (const file of files.filter((f) => top(f) === 'rating')) {
      for (const target of ours(file)) {
        const allowed = top(target) === 'rating' || target === 'common/time.ts' || (isTest(file) && pureTestSupport(target));
        if (!allowed) offending.push(`${file} -> ${target}`);
      }
      for (const pkg of packages(file)) {
        const allowed = libraries.has(pkg) || (isTest(file) && (testLibraries.has(pkg) || pkg.startsWith('node:')));
        if (!allowed) offending.push(`${file} -> ${pkg}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('common/ imports no folder of ours', () => {
    const offending = files
      .filter((f) => top(f) === 'common')
      .flatMap((f) => ours(f).filter((t) => top(t) !== 'common' && !(isTest(f) && t.startsWith('test/support/'))).map((t) => `${f} -> ${t}`));
    expect(offending).toEqual([]);
  });

  it('gateway/ and billing-api/ never import each other', () => {
    const offending = files.flatMap((f) =>
      ours(f)
        .filter((t) => (top(f) === 'gateway' && top(t) === 'billing-api') || (top(f) === 'billing-api' && top(t) === 'gateway'))
        .map((t) => `${f} -> ${t}`),
    );
    expect(offending).toEqual([]);
  });

  it('only app/ imports both gateway/ and billing-api/, and only app/ and tests import app/', () => {
    const both = files.filter((f) => top(f) !== 'app' && ['gateway', 'billing-api'].every((side) => ours(f).some((t) => top(t) === side)));
    expect(both).toEqual([]);
    const intoApp = files.filter((f) => !['app', 'test'].includes(top(f)) && !isTest(f) && ours(f).some((t) => top(t) === 'app'));
    expect(intoApp).toEqual([]);
  });

  it('the gateway-only process loads neither billing-api/ nor Fastify', () => {
    const seen = new Set<string>();
    const loaded = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file) || !graph.has(file)) return;
      seen.add(file);
      for (const pkg of packages(file)) loaded.add(pkg);
      for (const target of ours(file)) visit(target);
    };
    visit('app/gateway.main.ts');
    expect(seen.has('gateway/embedded/embedded-gateway.ts')).toBe(true);
    expect([...seen].filter((f) => top(f) === 'billing-api')).toEqual([]);
    expect([...loaded].filter((p) => p === 'fastify' || p.startsWith('@fastify/'))).toEqual([]);
  });
});
