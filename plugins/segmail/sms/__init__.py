"""SMS, the second channel of mailings: GSM-7/UCS-2 encoding and parts, the gateway interface with
Kannel as its real implementation, sending SMS batches, and delivery reports and STOP replies."""
