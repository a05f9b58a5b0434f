# bash completion for bootc. Install: bootc completion bash > /etc/bash_completion.d/bootc
# (or source <(bootc completion bash) in ~/.bashrc). bootc only lists names while completing:
# it never runs a command.
_bootc() {
	local cur="${COMP_WORDS[COMP_CWORD]}" IFS=$'\n'
	COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${COMP_WORDS[@]:1:COMP_CWORD}" --generate-bash-completion 2>/dev/null)" -- "${cur}"))
	if [[ ${#COMPREPLY[@]} -eq 0 ]]; then
		compopt -o default 2>/dev/null
	fi
}
complete -F _bootc bootc
