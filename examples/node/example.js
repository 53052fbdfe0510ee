'use strict';
// Calling imlimits from Node.js: an app, the checks an IM backend runs, a Batch, a refused check, a
// refused plan change read from its google.rpc.ErrorInfo, and an outage answered by a policy.
//
//   npm ci && node example.js                  # against localhost:50051 (IMLIMITS_TARGET to change it)
//   node example.js --outage                   # also: waits for Enter after you stop the server
//
// The conventions it follows are in docs/other-languages.md: a deadline on every call, retries only
// where they are safe, a request_id on plan calls, and a stated policy for when imlimits is down.

const crypto = require('node:crypto');
const path = require('node:path');
const readline = require('node:readline');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
// googleapis' google/rpc/status.proto (the error of a batched check) and error_details.proto (ErrorInfo,
// PreconditionFailure), copied from github.com/googleapis/googleapis; see googleapis/README.md.
const GOOGLEAPIS = path.join(__dirname, 'googleapis');

const TARGET = process.env.IMLIMITS_TARGET || 'localhost:50051';
const APP_ID = process.env.IMLIMITS_APP_ID || '1400000001';
// A check waits at most this long; then the policy below decides. Plan calls may take longer.
const CHECK_DEADLINE_MS = 1000;
const ADMIN_DEADLINE_MS = 5000;
// What this backend does when imlimits cannot answer in time: 'deny' (fail closed) or 'allow' (fail open).
const ON_UNAVAILABLE = process.env.IMLIMITS_ON_UNAVAILABLE || 'deny';

const definition = protoLoader.loadSync(['imlimits/v1/plan.proto', 'imlimits/v1/limit.proto'], {
  includeDirs: [PROTOS, GOOGLEAPIS],
  keepCase: true, // field names as in the .proto files: app_id, group_id
  longs: String, // uint64 app ids do not fit a JavaScript number
  enums: String,
  defaults: true,
  oneofs: true,
});
const { imlimits } = grpc.loadPackageDefinition(definition);
const details = protobuf.loadSync([
  path.join(GOOGLEAPIS, 'google/rpc/status.proto'),
  path.join(GOOGLEAPIS, 'google/rpc/error_details.proto'),
]);

// A token, when the server requires one (IMLIMITS_TOKEN), travels as `authorization: Bearer ...`.
function metadata() {
  const meta = new grpc.Metadata();
  if (process.env.IMLIMITS_TOKEN) meta.set('authorization', `Bearer ${process.env.IMLIMITS_TOKEN}`);
  return meta;
}

function call(client, method, request, deadlineMs) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata(), { deadline: Date.now() + deadlineMs }, (error, answer) => {
      if (error) reject(error);
      else resolve(answer);
    });
  });
}

// The google.rpc.Status a failed call carries in its trailers, with its ErrorInfo decoded.
function errorInfo(error) {
  const raw = error.metadata && error.metadata.get('grpc-status-details-bin')[0];
  if (!raw) return null;
  const status = details.lookupType('google.rpc.Status').decode(raw);
  for (const detail of status.details) {
    if (detail.type_url === 'type.googleapis.com/google.rpc.ErrorInfo') {
      return details.lookupType('google.rpc.ErrorInfo').decode(detail.value);
    }
  }
  return null;
}

// A check that could not be answered (UNAVAILABLE, or the deadline passed) is decided by the policy.
async function check(limits, method, request) {
  try {
    return await call(limits, method, request, CHECK_DEADLINE_MS);
  } catch (error) {
    if (error.code !== grpc.status.UNAVAILABLE && error.code !== grpc.status.DEADLINE_EXCEEDED) throw error;
    const allowed = ON_UNAVAILABLE === 'allow';
    console.log(`${method}: imlimits did not answer (${grpc.status[error.code]}): ${allowed ? 'admitted' : 'refused'}` +
                ` by policy (on_unavailable=${ON_UNAVAILABLE}), uncounted`);
    return { code: allowed ? 0 : -1, allowed, info: 'imlimits unavailable', degraded: true };
  }
}

function show(label, answer) {
  const text = answer.allowed ? 'admitted' : `refused ${answer.code}: ${answer.info}`;
  console.log(`${label}: ${text}`);
}

async function main() {
  const plans = new imlimits.v1.PlanService(TARGET, grpc.credentials.createInsecure());
  const limits = new imlimits.v1.LimitService(TARGET, grpc.credentials.createInsecure());

  // Plan calls carry a request_id: a retry after a lost answer then changes nothing twice.
  try {
    const app = await call(plans, 'CreateApp', { app_id: APP_ID, request_id: crypto.randomUUID() },
                           ADMIN_DEADLINE_MS);
    console.log(`app ${app.app_id} created on ${app.edition}: ${app.limits.group_members} members a group`);
  } catch (error) {
    if (error.code !== grpc.status.ALREADY_EXISTS) throw error;
    console.log(`app ${APP_ID} exists already`);
  }

  // The checks an IM backend runs before it acts. A refusal is a normal answer (status OK, code set).
  show('CreateGroup team', await check(limits, 'CreateGroup', {
    app_id: APP_ID, group_id: 'team', type: 'GROUP_TYPE_WORK', owner: 'alice', members: ['bob'],
  }));
  const crowd = Array.from({ length: 25 }, (_, i) => `user-${i}`);
  const refused = await check(limits, 'JoinGroup', { app_id: APP_ID, group_id: 'team', users: crowd });
  show('JoinGroup team (25 users)', refused);
  if (!refused.allowed) {
    // Tell the user with the IM code the platform documents; limit and current say which limit and its count.
    console.log(`  -> IM error ${refused.code}: limit ${refused.limit}, current ${refused.current}`);
  }

  // Many checks in one call, each decided as its unary RPC would, in order; one bad check fails alone.
  const batch = await call(limits, 'Batch', {
    checks: [
      { create_room: { app_id: APP_ID, room_id: 'stage', owner: 'host' } },
      { join_group: { app_id: APP_ID, group_id: 'stage', users: ['host', 'fan-1', 'fan-2'] } },
      { join_group: { app_id: APP_ID, group_id: 'team', users: ['carol'] } },
      { leave_group: { app_id: APP_ID, group_id: 'team', users: ['bob'] } },
      { join_group: { app_id: APP_ID, group_id: '', users: ['nobody'] } },
    ],
  }, CHECK_DEADLINE_MS);
  batch.results.forEach((result, index) => {
    if (result.result === 'check') show(`Batch[${index}]`, result.check);
    else if (result.result === 'release') console.log(`Batch[${index}]: released ${result.release.released}`);
    else console.log(`Batch[${index}]: error ${grpc.status[result.error.code]}: ${result.error.message}`);
  });

  const usage = await call(limits, 'GetUsage', { app_id: APP_ID, group_id: 'team' }, CHECK_DEADLINE_MS);
  console.log(`usage: ${usage.groups} groups, ${usage.av_rooms} AV rooms; team has ${usage.group_members} of ` +
              `${usage.group_members_limit} members`);

  // A refused plan change: FAILED_PRECONDITION, with its reason and values in google.rpc.ErrorInfo.
  try {
    await call(plans, 'ChangePlan', { app_id: APP_ID, user_group_limit: 600, request_id: crypto.randomUUID() },
               ADMIN_DEADLINE_MS);
  } catch (error) {
    const info = errorInfo(error);
    console.log(`ChangePlan: ${grpc.status[error.code]}: ${error.details}`);
    if (info) console.log(`  -> reason ${info.reason}, ${JSON.stringify(info.metadata)}`);
  }

  if (process.argv.includes('--outage')) {
    console.log('stop the imlimits server now, then press Enter');
    await new Promise((resolve) => readline.createInterface({ input: process.stdin }).once('line', resolve));
    show('JoinGroup during the outage', await check(limits, 'JoinGroup', {
      app_id: APP_ID, group_id: 'team', users: ['dave'],
    }));
  }
  plans.close();
  limits.close();
}

main().then(() => process.exit(0), (error) => {
  console.error(`example failed: ${error.message}`);
  process.exit(1);
});
