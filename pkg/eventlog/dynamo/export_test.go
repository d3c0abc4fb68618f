package dynamo

// ItemSize is itemSize, for the cost test's capacity units.
var ItemSize = itemSize
