// KafkaJS side of TestTransactionsKafkaJS (test/txn_clients_test.go): runs
// the transactions of txnScenario with a transactional producer and prints
// "done". Arguments: broker address, output topic, input topic, group,
// transactional id, transaction count.
const { Kafka, logLevel } = require('kafkajs')

const [addr, out, inp, group, txnId, count] = process.argv.slice(2)

async function main() {
  const kafka = new Kafka({ clientId: 'sluice-kafkajs', brokers: [addr], logLevel: logLevel.ERROR, retry: { retries: 10 } })
  const producer = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (let k = 0; k < Number(count); k++) {
    const txn = await producer.transaction()
    const messages = []
    for (let j = 0; j < 5; j++) {
      messages.push({ partition: 0, key: String(k), value: `out-${k}-${j}` })
    }
    await txn.send({ topic: out, acks: -1, messages })
    await txn.sendOffsets({
      consumerGroupId: group,
      topics: [{ topic: inp, partitions: [{ partition: 0, offset: String(5 * k + 5) }] }],
    })
    if (k % 2 === 0) {
      await txn.commit()
    } else {
      await txn.abort()
    }
  }
  await producer.disconnect()
  console.log('done')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
