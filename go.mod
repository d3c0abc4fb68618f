module github.com/sheetlog/sheetlog

go 1.26
