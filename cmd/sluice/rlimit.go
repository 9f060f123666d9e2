package main

// recommendedOpenFiles is the open file limit below which serve warns at
// start: enough for about 2,000 partitions of a segment or two each, with
// room for client connections.
const recommendedOpenFiles = 16384
