#!/usr/bin/env python3
# Verifies Sluice audit logs independently of Sluice, with the Python standard library only: each
# line's canonical form and SHA-256 hash chain as docs/audit.md specifies, across rotated files.
"""usage: verify-audit-chain.py [--json] [--continuation] [--anchor SEQ:SHA256]
                              [--pubkey KEY]... [--window N] [--live] PATH...

PATH is an audit file or a directory. Files are verified as one chain in the order given; the
*.jsonl files of a directory are taken in the order of their first record's seq. With --pubkey
(base64, as `sluice audit pubkey` prints it) every checkpoint must carry a valid Ed25519
signature of the record before it, no more than --window (default 1000) records may go
unsigned, and the chain must end with its shutdown checkpoint unless --live. Exit status:
0 intact, 1 broken (the first problem is printed with file:line and seq), 2 usage or I/O error.
Keep sluice_ed25519.py beside this script (checkpoint signatures).
"""
import base64
import binascii
import hashlib
import json
import math
import os
import re
import sys

from sluice_ed25519 import verify as ed25519_verify

GENESIS_PREV = '0' * 64
MAX_RECORD_BYTES = 1024 * 1024
SAFE_INTEGER = 2 ** 53 - 1
HEX_64 = re.compile(r'[0-9a-f]{64}')
ISO_UTC_MS = re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z')
REASONS = {
    'torn_tail': 'torn last line (no trailing newline)',
    'line_too_long': 'line longer than %d bytes' % MAX_RECORD_BYTES,
    'unparseable': 'unparseable line',
    'malformed': 'malformed record',
    'hash_mismatch': 'edited record (hash does not match its content)',
    'non_canonical': 'edited record (line is not in canonical form)',
    'bad_start': 'chain does not start at seq 1',
    'seq_gap': 'removed record (seq gap)',
    'seq_out_of_order': 'reordered or inserted record (seq out of order)',
    'prev_mismatch': "broken prev link (prev is not the previous record's hash)",
    'anchor_mismatch': 'record differs from the anchored head',
    'truncated': 'records cut off the end (the anchored head is missing)',
    'checkpoint_malformed': 'malformed checkpoint',
    'checkpoint_head_mismatch': 'checkpoint does not sign the record before it (records inserted, removed or rewritten)',
    'checkpoint_untrusted_key': 'checkpoint signed by an unknown key (chain rewritten without the key?)',
    'checkpoint_bad_signature': 'forged checkpoint (signature does not verify)',
    'unsigned_records': 'too many records without a checkpoint (checkpoints removed, chain rewritten without the key?)',
    'unsigned_tail': 'records after the last checkpoint, or a missing final checkpoint (tail truncated or rewritten?)',
}
CHECKPOINT_CONTEXT = 'sluice-audit-checkpoint-v1\n'
TRIGGERS = ('start', 'records', 'interval', 'shutdown', 'rotation', 'retention', 'key_rotation')
DEFAULT_WINDOW = 1000


class Problem(Exception):
    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# --- Canonical JSON (docs/audit.md, "Canonical serialisation") --------------------------------

_ESCAPES = {'"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t'}
# Python keeps a lone surrogate from a \ud800 escape as one code point; a valid pair is one code
# point above U+FFFF already, so every surrogate left here is lone and is escaped, as in ES2019.
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')


def _string(text):
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES.get(m.group()) or '\\u%04x' % ord(m.group()), text) + '"'


def _number(value):
    """ECMAScript Number::toString: shortest round-trip digits, laid out by the spec's rules."""
    if math.isnan(value) or math.isinf(value):
        raise Problem('malformed', '%r is not a finite number' % value)
    if value == 0:
        return '0'
    if value < 0:
        return '-' + _number(-value)
    mantissa, _, exponent = repr(value).partition('e')
    whole, _, fraction = mantissa.partition('.')
    digits = (whole + fraction.rstrip('0')) if fraction != '0' else whole
    stripped = digits.lstrip('0')
    n = len(whole) + int(exponent or 0) - (len(digits) - len(stripped))
    digits = stripped.rstrip('0')
    k = len(digits)
    if k <= n <= 21:
        return digits + '0' * (n - k)
    if 0 < n <= 21:
        return digits[:n] + '.' + digits[n:]
    if -6 < n <= 0:
        return '0.' + '0' * -n + digits
    e = n - 1
    return (digits[0] + ('.' + digits[1:] if k > 1 else '')) + 'e' + ('+' if e > 0 else '-') + str(abs(e))


def _utf16_order(key):
    # JavaScript's default sort compares UTF-16 code units, not code points (RFC 8785 §3.2.3).
    return key.encode('utf-16-be', 'surrogatepass')


def canonical(value):
    if value is None:
        return 'null'
    if value is True or value is False:
        return 'true' if value else 'false'
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return '[' + ','.join(canonical(item) for item in value) + ']'
    return '{' + ','.join(_string(key) + ':' + canonical(value[key]) for key in sorted(value, key=_utf16_order)) + '}'


def _reject_constant(name):
    raise ValueError('%s is not JSON' % name)


def check_line(raw):
    """One line without its newline, checked alone; returns the record or raises Problem."""
    try:
        # utf-8-sig: like the decoder Sluice uses, drop a leading byte-order mark before parsing
        # (the mark then makes the line non-canonical). Every number is a double, as in JSON.parse.
        parsed = json.loads(raw.decode('utf-8-sig'), parse_int=float, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Problem('unparseable', str(error))
    if not isinstance(parsed, dict):
        raise Problem('malformed', 'not a JSON object')
    seq, ts, prev, digest, kind = (parsed.get(name) for name in ('seq', 'ts', 'prev', 'hash', 'kind'))
    if type(seq) is not float or not seq.is_integer() or not 1 <= seq <= SAFE_INTEGER:
        raise Problem('malformed', 'seq is not a positive integer')
    if type(ts) is not str or not ISO_UTC_MS.fullmatch(ts):
        raise Problem('malformed', 'ts is not ISO-8601 UTC with milliseconds')
    if type(prev) is not str or not HEX_64.fullmatch(prev):
        raise Problem('malformed', 'prev is not 64 lowercase hex digits')
    if type(digest) is not str or not HEX_64.fullmatch(digest):
        raise Problem('malformed', 'hash is not 64 lowercase hex digits')
    if type(kind) is not str or kind == '':
        raise Problem('malformed', 'kind is not a non-empty string')
    unsealed = {key: item for key, item in parsed.items() if key != 'hash'}
    expected = hashlib.sha256(canonical(unsealed).encode('utf-8')).hexdigest()
    if expected != digest:
        raise Problem('hash_mismatch', 'content hashes to %s..., record says %s...' % (expected[:12], digest[:12]))
    if canonical(parsed).encode('utf-8') != raw:
        raise Problem('non_canonical', 'line bytes differ from the canonical form of its content')
    return parsed


# --- The chain ---------------------------------------------------------------------------------

def _lines(paths):
    """(file, line number, bytes, terminated, overlong) for every line of every file, in order."""
    for path in paths:
        with open(path, 'rb') as handle:
            number = 0
            while True:
                chunk = handle.readline(MAX_RECORD_BYTES + 1)
                if not chunk:
                    break
                number += 1
                if chunk.endswith(b'\n'):
                    yield path, number, chunk[:-1], True, False
                elif len(chunk) > MAX_RECORD_BYTES:
                    yield path, number, b'', False, True
                    return
                else:
                    yield path, number, chunk, False, False


def _appears_later(lines, seq):
    """Tells a swap (the missing seq shows up further on) from a deletion."""
    for _, _, raw, terminated, overlong in lines:
        if overlong or not terminated:
            return False
        try:
            if check_line(raw)['seq'] == seq:
                return True
        except Problem:
            pass
    return False


def _b64(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b''


def check_checkpoint(record, trusted):
    """docs/audit.md "Signed checkpoints": returns the announced next key (or None), or raises Problem."""
    fields = {name: record.get(name) for name in ('trigger', 'head_seq', 'head_hash', 'time', 'key')}
    next_key = record.get('next_key')
    if (fields['trigger'] not in TRIGGERS or type(fields['head_seq']) is not float or any(type(fields[name]) is not str for name in ('head_hash', 'time', 'key'))
            or type(record.get('signature')) is not str or (next_key is not None and type(next_key) is not str)):
        raise Problem('checkpoint_malformed', 'a checkpoint needs trigger, head_seq, head_hash, time, key and signature')
    if fields['head_seq'] != record['seq'] - 1 or fields['head_hash'] != record['prev']:
        raise Problem('checkpoint_head_mismatch', 'signs seq %d %s... but follows seq %d %s...' % (
            fields['head_seq'], fields['head_hash'][:12], record['seq'] - 1, record['prev'][:12]))
    if fields['key'] not in trusted:
        raise Problem('checkpoint_untrusted_key', 'signed by %s, which is not a trusted or announced key' % fields['key'])
    if next_key is not None:
        fields['next_key'] = next_key
    message = (CHECKPOINT_CONTEXT + canonical(fields)).encode('utf-8')
    key, signature = _b64(fields['key']), _b64(record['signature'])
    if len(key) != 32 or not verify_checkpoint_signature(key, message, signature):
        raise Problem('checkpoint_bad_signature', 'the signature does not verify under %s' % fields['key'])
    return next_key


def _bad_start(start):
    path, number, seq, prev = start
    return {'ok': False, 'records': 0, 'seq': 1, 'file': path, 'line': number, 'reason': 'bad_start',
            'detail': 'first record has seq %d and prev %s..., and no audit_retention record accounts for the records before it' % (seq, prev[:12])}


def verify(paths, continuation=False, anchor=None, pubkeys=None, window=DEFAULT_WINDOW, live=False):
    lines = _lines(paths)
    previous = first = open_start = None
    records = 0
    where = (paths[-1] if paths else '', 0)
    signing = None if pubkeys is None else {'trusted': set(pubkeys), 'unsigned': 0, 'last': None}
    lines_in = {}
    for path, number, raw, terminated, overlong in lines:
        where = (path, number)
        lines_in[path] = number
        expected = (0 if continuation else 1) if previous is None else int(previous['seq']) + 1

        def broken(reason, detail, seq=expected):
            # a broken link after a first record no retention record explained yet: that start is the problem
            if open_start is not None and reason in ('seq_gap', 'seq_out_of_order', 'prev_mismatch'):
                return _bad_start(open_start)
            return {'ok': False, 'records': records, 'seq': seq, 'file': path, 'line': number, 'reason': reason, 'detail': detail}

        if overlong:
            return broken('line_too_long', 'records are never this long; the file is not an audit log or was damaged')
        if not terminated:
            return broken('torn_tail', '%d bytes after the last newline' % len(raw))
        try:
            record = check_line(raw)
        except Problem as problem:
            return broken(problem.reason, problem.detail)
        seq = int(record['seq'])
        if previous is None:
            if not continuation and (seq != 1 or record['prev'] != GENESIS_PREV):
                # Accepted only if an audit_retention record later names the record it follows.
                open_start = (path, number, seq, record['prev'])
            first = {'seq': seq, 'prev': record['prev']}
        elif seq > expected:
            if _appears_later(lines, expected):
                return broken('seq_out_of_order', 'seq %d comes before seq %d, which appears later' % (seq, expected))
            return broken('seq_gap', 'seq %d follows seq %d: %d record(s) missing' % (seq, expected - 1, seq - expected))
        elif seq < expected:
            return broken('seq_out_of_order', 'seq %d follows seq %d: a record was inserted or moved' % (seq, expected - 1))
        elif record['prev'] != previous['hash']:
            return broken('prev_mismatch', 'prev %s... but seq %d hashes to %s...' % (record['prev'][:12], expected - 1, previous['hash'][:12]))
        if anchor is not None and seq == anchor[0] and record['hash'] != anchor[1]:
            return broken('anchor_mismatch', 'seq %d hashes to %s..., anchored as %s...' % (seq, record['hash'][:12], anchor[1][:12]), seq)
        if (open_start is not None and record['kind'] == 'audit_retention'
                and record.get('last_seq') == open_start[2] - 1 and record.get('last_hash') == open_start[3]):
            open_start = None
        if signing is not None:
            if record['kind'] != 'checkpoint':
                signing['unsigned'] += 1
                if signing['unsigned'] > window:
                    return broken('unsigned_records', '%d records since the last checkpoint; the writer signs at least every %d' % (signing['unsigned'], window), seq)
            else:
                try:
                    announced = check_checkpoint(record, signing['trusted'])
                except Problem as problem:
                    return broken(problem.reason, problem.detail, seq)
                if announced is not None:
                    # a successor replaces the key that announced it
                    signing['trusted'] = {announced}
                signing['unsigned'] = 0
                signing['last'] = {'seq': seq, 'time': record['time'], 'key': record['key'], 'trigger': record['trigger']}
        previous = record
        records += 1
    last = int(previous['seq']) if previous is not None else 0
    ended = next(((path, lines_in[path] + 1) for path in reversed(paths) if lines_in.get(path)), (where[0], 1))
    empty_after_last = bool(paths) and previous is not None and not lines_in.get(paths[-1])

    def at_end(reason, detail):
        return {'ok': False, 'records': records, 'seq': last + 1, 'file': ended[0], 'line': ended[1], 'reason': reason, 'detail': detail}

    if open_start is not None:
        return _bad_start(open_start)
    if anchor is not None and (first is None or anchor[0] < first['seq'] or anchor[0] > last):
        if anchor[0] > last:
            return at_end('truncated', 'the files end at seq %d, the anchored head is seq %d' % (last, anchor[0]))
        return at_end('anchor_mismatch', 'anchored seq %d precedes the first record' % anchor[0])
    if signing is not None and previous is not None and not live:
        closing = signing['last']['trigger'] if signing['unsigned'] == 0 and signing['last'] is not None else None
        if closing != 'shutdown' and not (closing == 'rotation' and empty_after_last):
            if closing == 'rotation':
                return at_end('unsigned_tail', 'the chain ends at a rotation checkpoint but the file that continues it is missing')
            return at_end('unsigned_tail', '%d record(s) after the last checkpoint and no shutdown checkpoint; pass --live if Sluice is still writing' % signing['unsigned'])
    head = None if previous is None else {'seq': last, 'hash': previous['hash']}
    result = {'ok': True, 'records': records, 'files': len(paths), 'first': first, 'head': head}
    if signing is not None:
        result['signed'] = signing['last']
        result['unsigned'] = signing['unsigned']
    return result


def audit_files(targets):
    """Expands directories to their *.jsonl files, ordered by the seq of each file's first record."""
    paths = []
    for target in targets:
        if not os.path.isdir(target):
            paths.append(target)
            continue
        found = [os.path.join(target, name) for name in os.listdir(target) if name.endswith('.jsonl')]
        paths.extend(sorted((path for path in found if os.path.isfile(path)), key=lambda path: (_first_seq(path), path)))
    return paths


def _first_seq(path):
    with open(path, 'rb') as handle:
        line = handle.readline(MAX_RECORD_BYTES + 1)
    try:
        seq = json.loads(line)['seq']
    except (ValueError, TypeError, KeyError):
        seq = None
    if type(seq) in (int, float):
        return seq
    # an empty file (a fresh active file) and a damaged one go last; a damaged one is reported there
    return math.inf


# --- Checkpoint signatures ----------------------------------------------------------------------

def verify_checkpoint_signature(public_key, message, signature):
    """True only if `signature` (64 bytes) is `public_key`'s (32 bytes) Ed25519 signature of
    `message`. Pure Python (RFC 8032 §5.1.7, see sluice_ed25519.py): no third-party package."""
    return ed25519_verify(public_key, message, signature)


# --- Command line ------------------------------------------------------------------------------

def main(argv):
    options, targets, anchor, pubkeys, window = set(), [], None, [], DEFAULT_WINDOW
    arguments = iter(argv)
    for argument in arguments:
        if argument in ('--json', '--continuation', '--live'):
            options.add(argument)
        elif argument == '--pubkey':
            key = next(arguments, '')
            if len(_b64(key)) != 32:
                print('--pubkey wants a base64 Ed25519 public key (44 characters)', file=sys.stderr)
                return 2
            pubkeys.append(key)
        elif argument == '--window':
            text = next(arguments, '')
            if not text.isdigit() or int(text) < 1:
                print('--window wants a positive number of records', file=sys.stderr)
                return 2
            window = int(text)
        elif argument == '--anchor':
            match = re.fullmatch(r'([0-9]+):([0-9a-f]{64})', next(arguments, ''))
            if match is None:
                print('--anchor wants SEQ:SHA256 (64 lowercase hex digits)', file=sys.stderr)
                return 2
            anchor = (int(match.group(1)), match.group(2))
        elif argument.startswith('-'):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            targets.append(argument)
    if not targets:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = verify(audit_files(targets), '--continuation' in options, anchor, pubkeys or None, window, '--live' in options)
    except OSError as error:
        print('cannot read: %s' % error, file=sys.stderr)
        return 2
    if '--json' in options:
        print(json.dumps(result, sort_keys=True))
    elif result['ok']:
        print('ok: %d records verified in %d file(s)' % (result['records'], result['files']))
        if result['head'] is not None:
            print('head: seq %d sha256 %s' % (result['head']['seq'], result['head']['hash']))
        if result.get('signed') is not None:
            signed = result['signed']
            print('signed: seq %d at %s (%s) by %s' % (signed['seq'], signed['time'], signed['trigger'], signed['key']))
    else:
        print('broken at seq %d (%s:%d): %s: %s' % (result['seq'], result['file'], result['line'], REASONS[result['reason']], result['detail']))
    return 0 if result['ok'] else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
