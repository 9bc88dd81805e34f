// Bundles dist/browser.js and the modules it imports into one ES module
// with no imports (no bundler dependency): each module becomes a function
// scope returning its exports, in dependency order, and the entry's
// exports are exported. It fails on any import that is not a relative
// module of dist/ (a Node built-in, say), so the browser build cannot
// pick one up.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const modName = (file) => '__sb_' + basename(file, '.js').replace(/\W/g, '_');

const order = [];
const seen = new Set();
const sources = new Map();

function visit(file) {
  if (seen.has(file)) return;
  seen.add(file);
  const src = readFileSync(join(dist, file), 'utf8');
  sources.set(file, src);
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s*'([^']+)'/g)) {
    const dep = m[1];
    if (!dep.startsWith('./')) throw new Error(`bundle: ${file} imports ${dep}, which a browser build cannot have`);
    visit(dep.slice(2));
  }
  if (/(?:^|\n)\s*import\s*['"(]/.test(src) || /\bimport\(/.test(src)) throw new Error(`bundle: ${file} has a bare or dynamic import`);
  order.push(file);
}

/** bindings turns "a, b as c" into "a, b: c" for a destructuring. */
const bindings = (list) => list.split(',').map((s) => s.trim()).filter(Boolean)
  .map((s) => s.replace(/^([\w$]+)\s+as\s+([\w$]+)$/, '$1: $2')).join(', ');
const exportedNames = (list) => list.split(',').map((s) => s.trim()).filter(Boolean)
  .map((s) => { const m = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(s); return m[2] ? `${m[2]}: ${m[1]}` : m[1]; });

function wrap(file) {
  let src = sources.get(file);
  const exports = [];
  src = src.replace(/^\/\/# sourceMappingURL=.*$/m, '');
  src = src.replace(/import\s*\{([^}]*)\}\s*from\s*'\.\/([^']+)';/g, (_, list, dep) => `const { ${bindings(list)} } = ${modName(dep)};`);
  src = src.replace(/import\s*\*\s*as\s*([\w$]+)\s*from\s*'\.\/([^']+)';/g, (_, ns, dep) => `const ${ns} = ${modName(dep)};`);
  src = src.replace(/export\s*\{([^}]*)\}\s*from\s*'\.\/([^']+)';/g, (_, list, dep) => {
    for (const s of list.split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(s);
      exports.push(`${m[2] ?? m[1]}: ${modName(dep)}.${m[1]}`);
    }
    return '';
  });
  src = src.replace(/export\s*\{([^}]*)\};/g, (_, list) => { exports.push(...exportedNames(list)); return ''; });
  src = src.replace(/(^|\n)export\s+((?:async\s+)?function\*?|class)\s+([\w$]+)/g, (_, nl, kw, name) => { exports.push(name); return `${nl}${kw} ${name}`; });
  src = src.replace(/(^|\n)export\s+(const|let|var)\s+([^;]*);/g, (_, nl, kw, decl) => {
    // Names of the declarators at depth 0: "a = 1, b = f(x, y)".
    let depth = 0, start = 0;
    const parts = [];
    for (let i = 0; i < decl.length; i++) {
      const ch = decl[i];
      if ('([{'.includes(ch)) depth++;
      else if (')]}'.includes(ch)) depth--;
      else if (ch === ',' && depth === 0) { parts.push(decl.slice(start, i)); start = i + 1; }
    }
    parts.push(decl.slice(start));
    for (const p of parts) exports.push(/^\s*([\w$]+)/.exec(p)[1]);
    return `${nl}${kw} ${decl};`;
  });
  if (/(^|\n)\s*export\s/.test(src)) throw new Error(`bundle: ${file}: an export form the bundler does not know`);
  return { code: `const ${modName(file)} = (() => {\n${src}\nreturn { ${exports.join(', ')} };\n})();\n`, exports };
}

visit('browser.js');
let out = '// @socketbus/client, browser build: one ES module, no Node built-ins.\n';
let entryExports = [];
for (const file of order) {
  const { code, exports } = wrap(file);
  out += code;
  if (file === 'browser.js') entryExports = exports.map((e) => e.split(':')[0].trim());
}
out += `export const { ${entryExports.join(', ')} } = ${modName('browser.js')};\n`;
writeFileSync(join(dist, 'browser.js'), out);
console.log(`bundle: dist/browser.js from ${order.length} modules, exports ${entryExports.join(', ')}`);
