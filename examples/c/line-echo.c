/*
 * line-echo: answer each line with "echo: LINE", for wsbridge's default
 * line framing (one WebSocket text message per line, both ways).
 *
 *   cc -O2 -o line-echo line-echo.c
 *   wsbridge ./line-echo
 *
 * Exits 0 at end of input: wsbridge closes stdin when the client leaves.
 */
#define _POSIX_C_SOURCE 200809L /* getline */

#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	char *line = NULL; /* getline grows it: lines of any length */
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) != -1) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		/* fwrite, not printf("%s"): the line may hold NUL bytes. */
		fputs("echo: ", stdout);
		fwrite(line, 1, (size_t)n, stdout);
		putchar('\n');
		/*
		 * The classic mistake: stdout to a terminal is line-buffered,
		 * but to a pipe (which is what wsbridge gives us) it is fully
		 * buffered, so without this flush the answer waits in a 4 KiB
		 * buffer until it fills or the program exits, and the client
		 * sees nothing. Flush per answer (or call
		 * setvbuf(stdout, NULL, _IOLBF, 0) once at start).
		 */
		if (fflush(stdout) == EOF)
			break;
	}
	free(line);
	if (ferror(stdin) || ferror(stdout)) {
		perror("line-echo");
		return 1;
	}
	return 0;
}
